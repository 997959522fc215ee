"""Hostile and broken requests against a real TotoHandler: each gets a Toto error or a
clear 4xx (1.0.12 answered several with an HTML 500 or never answered), and the server
keeps serving."""

import json
import socket

import pytest
import six

from support import DEFAULT_WAIT
from websupport import WebServer, json_body

ERROR_SERVER = 1000
ERROR_INVALID_METHOD = 1001


@pytest.fixture(scope='module')
def server():
    with WebServer() as running:
        yield running


def assert_refused(answer, status=400, text=None):
    assert answer.status == status, answer
    assert answer.header_values('Content-Type')[-1] == 'application/json'
    error = answer.json['error']
    assert error['code'] == ERROR_SERVER
    if text is not None:
        assert text in error['value']
    assert 'Traceback' not in answer.text


def assert_still_serving(server):
    assert server.post('/api/echo', {'alive': True}).json == {'result': {'alive': True}}


@pytest.mark.parametrize('body', [b'{bad json', b'   ', b'{"a": 1} trailing', b'\x00\x01',
                                  b'"unterminated'])
def test_invalid_json_is_a_400_with_a_toto_error(server, body):
    assert_refused(server.post('/api/echo', raw=body, content_type='application/json'),
                   text='not valid JSON')
    assert_still_serving(server)


def test_a_body_that_is_not_utf8_is_a_400(server):
    assert_refused(server.post('/api/echo', raw=b'{"a": "\xff\xfe"}',
                               content_type='application/json'), text='UTF-8')


def test_form_values_that_are_not_utf8_are_a_400_on_python_3(server):
    answers = [server.post('/api/echo', raw=b'a=%FF',
                           content_type='application/x-www-form-urlencoded'),
               server.get('/api/echo?a=%FF%FE')]
    for answer in answers:
        if six.PY2:
            # Methods get the bytes as 1.0.12 gave them (str); echoing them cannot be JSON.
            assert answer.status == 200 and answer.json['error']['code'] == ERROR_SERVER
        else:
            assert_refused(answer, text='UTF-8')


def test_deeply_nested_json_is_a_400(server):
    assert_refused(server.post('/api/echo', raw=b'[' * 200000 + b']' * 200000,
                               content_type='application/json'))
    assert_still_serving(server)


def test_nested_json_the_answer_cannot_encode_is_a_toto_error(server):
    depth = 900
    answer = server.post('/api/echo', raw=b'[' * depth + b']' * depth,
                         content_type='application/json')
    assert answer.status in (200, 400)
    assert 'result' in answer.json or answer.json['error']['code'] == ERROR_SERVER


def test_a_malformed_multipart_body_is_refused_or_empty(server):
    answer = server.post('/api/upload', raw=b'--x\r\ngarbage',
                         content_type='multipart/form-data; boundary=x')
    assert answer.status in (200, 400)
    assert 'error' in answer.json or answer.json == {'result': {'arguments': {}, 'files': {}}}
    assert_still_serving(server)


def test_a_body_over_the_limit_is_a_413_before_it_is_read():
    with WebServer() as server:
        server.settings.max_body_size = 1024
        assert server.post('/api/echo', raw=b'{"a": "' + b'x' * 900 + b'"}').status == 200
        client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
        try:
            # Announce 50 MB, send none of it: the answer comes from the headers alone.
            client.sendall(b'POST /api/echo HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n')
            answer = _read_until_closed(client)
        finally:
            client.close()
        head, _, body = answer.partition(b'\r\n\r\n')
        assert head.startswith(b'HTTP/1.1 413 ')
        assert json.loads(body.decode('ascii'))['error']['code'] == ERROR_SERVER
        assert_still_serving(server)


def test_a_chunked_body_over_the_limit_is_a_413():
    with WebServer() as server:
        server.settings.max_body_size = 1024
        client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
        try:
            client.sendall(b'POST /api/echo HTTP/1.1\r\nHost: x\r\n'
                           b'Transfer-Encoding: chunked\r\n\r\n')
            chunk = b'x' * 600
            for _ in range(3):
                client.sendall(b'%x\r\n' % len(chunk) + chunk + b'\r\n')
            answer = _read_until_closed(client)
        finally:
            client.close()
        assert answer.startswith(b'HTTP/1.1 413 ')
        assert_still_serving(server)


def _read_until_closed(client):
    data = b''
    while True:
        try:
            piece = client.recv(65536)
        except socket.error:  # reset after the answer: the body was not read
            break
        if not piece:
            break
        data += piece
    return data


@pytest.mark.parametrize('name', [
    '_hidden', '__init__', 'echo.__class__', 'echo.invoke.__globals__', 'leaky.web_outside',
    'coroutine_method.gen', 'os', 'echo.json', 'x' * 5000, '../echo', 'echo\x00',
    u'\xe9cho'])
def test_method_names_outside_the_method_package_are_invalid(server, name):
    answer = server.call(name)
    assert answer.status == 200
    assert answer.json['error']['code'] == ERROR_INVALID_METHOD
    assert len(answer.body) < 600  # a long name is cut in the answer


@pytest.mark.parametrize('name', [5, None, [1], {'a': 1}, True])
def test_method_names_that_are_not_text_are_invalid(server, name):
    answer = server.post('/api', {'method': name})
    assert answer.status == 200
    assert answer.json['error']['code'] == ERROR_INVALID_METHOD


def test_a_method_module_reached_by_path_with_dots_and_slashes_is_still_checked(server):
    assert server.post('/api/leaky/web_outside', {}).json['error']['code'] == \
        ERROR_INVALID_METHOD
    assert server.post('/api/_hidden', {}).json['error']['code'] == ERROR_INVALID_METHOD


def test_a_failing_after_hook_leaves_the_answer_alone():
    with WebServer(hooks={'set_after_handler': lambda handler, transaction_id: 1 / 0}) as server:
        assert server.post('/api/echo', {'a': 1}).json == {'result': {'a': 1}}


def test_server_errors_show_a_traceback_only_when_asked():
    from toto.fakeconnection import FakeConnection
    from dbsupport import DictSessionCache
    connection = FakeConnection()
    connection.set_session_cache(DictSessionCache())

    def broken(handler, session, body):
        raise RuntimeError('secret internals')

    hooks = {'set_response_hmac_handler': broken}
    with WebServer(db_connection=connection, hooks=hooks, hmac_enabled=True,
                   settings={'serve_traceback': True}) as quiet:
        answer = quiet.call('anon')
        assert answer.status == 500
        assert b'secret internals' not in answer.body and b'Traceback' not in answer.body
    with WebServer(db_connection=connection, hooks=hooks, hmac_enabled=True,
                   serve_tracebacks=True) as verbose:
        answer = verbose.call('anon')
        assert answer.status == 500
        assert b'Traceback' in answer.body and b'secret internals' in answer.body


def test_huge_headers_and_junk_do_not_stop_the_server(server):
    for junk in (b'GARBAGE\r\n\r\n', b'POST /api/echo HTTP/1.1\r\nContent-Length: x\r\n\r\n',
                 b'\x16\x03\x01\x00\xa5\x01\x00\x00'):
        client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
        try:
            client.sendall(junk)
            client.shutdown(socket.SHUT_WR)
            _read_until_closed(client)
        finally:
            client.close()
    assert_still_serving(server)


def test_requests_with_many_parameters_and_keys(server):
    parameters = dict(('k%d' % index, index) for index in range(5000))
    assert server.post('/api/echo', parameters).json == {'result': parameters}
    big_batch = dict(('%04d' % index, {'method': 'constant', 'parameters': {'value': index}})
                     for index in range(500))
    answer = server.post('/api', {'batch': big_batch})
    assert answer.json['batch']['0499'] == {'result': 499}


def test_session_ids_of_any_shape_are_just_unknown(server):
    for session_id in ('x' * 10000, u'\xe9\xe8', '../../etc/passwd', '\t'):
        answer = server.call('optional', headers={'x-toto-session-id': session_id.encode(
            'utf-8') if not isinstance(session_id, str) else session_id})
        assert answer.json == {'result': {'signed_in': False}}


def test_a_body_on_get_is_ignored(server):
    answer = server.request('GET', '/api/echo?a=1', json_body({'method': 'fail'}))
    assert answer.json == {'result': {'a': '1'}}
