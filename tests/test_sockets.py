"""Websockets of a TotoServer (``--use_web_sockets``) and its client-side worker route.

One server process per module serves both; the tests talk to it with Tornado's
``websocket_connect`` client and call its HTTP methods with ``http.client``.  The
message format is documented in ``toto.sockets`` and ``toto.clientsideworker``.
"""

import base64
import json
import os
import signal
import socket
import threading
import time

import pytest
import tornado
from server_apps.serverproc import ServerGroup, call, free_port_pair
from support import wait_until
from tornado import gen
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

MAX_MESSAGE = 64 * 1024
SERVER_ARGS = ['--use_web_sockets', '--socket_method_module=socket_methods',
               '--socket_opened_method=hooks.opened',
               '--socket_closed_method=hooks.closed_socket',
               '--client_side_worker_path=worker', '--event_mode=on', '--database=json',
               '--db_host=', '--socket_max_message_size=%d' % MAX_MESSAGE]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    group = ServerGroup(str(tmp_path_factory.mktemp('sockets')))
    try:
        yield group.start(SERVER_ARGS + ['--event_port=%d' % free_port_pair()])
    finally:
        group.close()


class Socket(object):
    """A websocket client on the test's IOLoop."""

    def __init__(self, io_loop, port, path='/websocket', headers=None):
        self.io_loop = io_loop
        self.closed = False
        url = 'ws://127.0.0.1:%d%s' % (port, path)
        self.connection = io_loop.run_sync(
            lambda: websocket_connect(HTTPRequest(url, headers=headers or {})), timeout=5)

    def send(self, message):
        if not isinstance(message, (bytes, type(u''))):
            message = json.dumps(message)
        self._write(message, binary=False)

    def send_binary(self, data):
        self._write(data, binary=True)

    def _write(self, message, binary):
        # On the loop: Tornado makes its Futures for the loop that runs.
        self.io_loop.run_sync(lambda: self.connection.write_message(message, binary=binary),
                              timeout=5)

    def receive(self, timeout=5.0):
        """The next message, decoded (None once the socket closed)."""
        message = self.io_loop.run_sync(self.connection.read_message, timeout=timeout)
        if message is None:
            self.closed = True
            return None
        return json.loads(message)

    def call(self, method, parameters=None, message_id=1):
        self.send({'method': method, 'parameters': parameters or {}, 'message_id': message_id})
        return self.receive()

    def close(self):
        """Close, and wait for the server's answer, so the client's reader ends too."""
        if self.closed:
            return
        self.closed = True

        @gen.coroutine
        def close_and_drain():
            self.connection.close()
            while (yield self.connection.read_message()) is not None:
                pass
        try:
            self.io_loop.run_sync(close_and_drain, timeout=2)
        except Exception:  # gone already, or the server never answered
            pass


@pytest.fixture
def open_socket(io_loop, server):
    sockets = []

    def open_(path='/websocket', headers=None, greeted=True):
        opened = Socket(io_loop, server.port, path, headers)
        sockets.append(opened)
        if greeted:  # socket_opened_method says hello first
            assert opened.receive()['opened'] is True
        return opened

    yield open_
    for opened in sockets:
        opened.close()


def test_a_call_with_a_message_id_is_answered_with_its_result(open_socket):
    socket = open_socket()

    assert socket.call('echo', {'text': 'hi'}, message_id='a1') == {
        'message_id': 'a1', 'result': {'text': 'hi'}}
    assert socket.call('nothing', message_id=2) == {'message_id': 2, 'result': None}


def test_the_opened_hook_gets_the_socket_first(server, io_loop):
    socket = Socket(io_loop, server.port)
    try:
        assert socket.receive() == {'opened': True, 'session_id': None}
    finally:
        socket.close()


def test_a_call_without_a_message_id_sends_no_result(open_socket):
    socket = open_socket()

    socket.send({'method': 'echo', 'parameters': {'ignored': True}})

    assert socket.call('echo', {'n': 2}, message_id=2) == {'message_id': 2, 'result': {'n': 2}}


@pytest.mark.parametrize('message, value', [
    ('not json {', 'Invalid message: not JSON'),
    ('[1, 2]', 'Invalid message: a call is a JSON object'),
    ('"text"', 'Invalid message: a call is a JSON object'),
])
def test_messages_that_are_not_calls_get_an_error_and_the_socket_stays_open(open_socket,
                                                                             message, value):
    socket = open_socket()

    socket.send(message)

    error = socket.receive()['error']
    assert error['code'] == 1000
    assert error['value'].startswith(value)
    assert socket.call('echo', {'still': 'open'})['result'] == {'still': 'open'}


def test_deeply_nested_json_gets_an_error(open_socket):
    socket = open_socket()

    # Deeper than any Python's JSON decoder goes (3.13's takes 5,000 levels), and
    # within the message size limit.
    depth = min(20000, MAX_MESSAGE // 2)
    socket.send('[' * depth + ']' * depth)

    error = socket.receive()['error']
    assert error['code'] == 1000
    assert error['value'].startswith('Invalid message: not JSON')
    assert socket.call('echo', {'after': 'nesting'})['result'] == {'after': 'nesting'}


def test_binary_messages_get_an_error(open_socket):
    socket = open_socket()

    socket.send_binary(b'\x00\x01binary')

    assert socket.receive() == {'error': {
        'code': 1000, 'value': 'Invalid message: binary messages are not calls; send JSON text'}}


def test_missing_and_unknown_methods_get_1002_and_1001(open_socket):
    socket = open_socket()

    socket.send({'parameters': {}, 'message_id': 5})
    assert socket.receive() == {'message_id': 5,
                                'error': {'code': 1002, 'value': 'Missing method.'}}
    assert socket.call('no.such.method', message_id=6) == {
        'message_id': 6, 'error': {'code': 1001, 'value': "Cannot call 'no.such.method'."}}
    assert socket.call('json.decoder', message_id=7)['error']['code'] == 1001
    assert socket.call('_private', message_id=8)['error']['code'] == 1001


def test_errors_a_method_raises_are_answered(open_socket):
    socket = open_socket()

    assert socket.call('fail', message_id=1) == {
        'message_id': 1, 'error': {'code': 1000, 'value': 'broken on purpose'}}
    assert socket.call('fail', {'toto': True}, message_id=2) == {
        'message_id': 2, 'error': {'code': 1004, 'value': 'Not authorized'}}
    socket.send({'method': 'fail', 'parameters': {}})
    assert socket.receive() == {'error': {'code': 1000, 'value': 'broken on purpose'}}


def test_asynchronous_and_coroutine_methods_answer_when_done(open_socket):
    socket = open_socket()

    assert socket.call('later', {'x': 1}, message_id=1) == {
        'message_id': 1, 'result': {'later': {'x': 1}}}
    assert socket.call('coro', {'y': 2}, message_id=2) == {
        'message_id': 2, 'result': {'coroutine': {'y': 2}}}


def test_send_message_sends_data_with_or_without_a_message_id(open_socket):
    socket = open_socket()

    socket.send({'method': 'push', 'parameters': {}, 'message_id': 9})

    assert socket.receive() == {'pushed': 1}
    assert socket.receive() == {'message_id': 'side', 'data': {'pushed': 2}}
    assert socket.receive() == {'message_id': 9, 'result': 'done'}


def test_a_message_over_the_size_limit_closes_the_socket(open_socket):
    socket = open_socket()

    socket.send({'method': 'echo', 'parameters': {'text': 'x' * (MAX_MESSAGE + 1)}})

    assert socket.receive() is None
    assert socket.connection.close_code == 1009


def test_unanswered_calls_past_the_cap_are_refused(open_socket):
    socket = open_socket()
    for _ in range(100):
        socket.send({'method': 'hold', 'parameters': {}})

    answer = socket.call('echo', message_id='over')

    assert answer['message_id'] == 'over'
    assert answer['error']['value'].startswith('Too many calls in progress on this socket')


def test_a_session_comes_from_the_url_or_the_header(open_socket):
    anonymous = open_socket()
    assert anonymous.call('whoami')['error'] == {'code': 1004, 'value': 'Not authorized'}
    session_id = anonymous.call('login', {'user_id': 'alice'})['result']['session_id']
    assert anonymous.call('whoami') == {'message_id': 1, 'result': {'user_id': 'alice'}}

    by_url = open_socket('/websocket/' + session_id, greeted=False)
    assert by_url.receive() == {'opened': True, 'session_id': session_id}
    by_header = open_socket(headers={'x-toto-session-id': session_id}, greeted=False)
    assert by_header.receive() == {'opened': True, 'session_id': session_id}

    assert by_url.call('whoami')['result'] == {'user_id': 'alice'}
    assert by_header.call('whoami')['result'] == {'user_id': 'alice'}


def test_session_ids_with_a_dash_reach_the_socket(open_socket):
    socket = open_socket('/websocket/abc-def_ghi', greeted=False)

    assert socket.receive() == {'opened': True, 'session_id': 'abc-def_ghi'}


def test_events_reach_a_subscribed_socket(open_socket, server):
    socket = open_socket()
    assert socket.call('subscribe')['result'] == 'subscribed'

    call(server.port, 'send_event', {'message': 'first'})
    call(server.port, 'send_event', {'message': 'second'})

    assert socket.receive() == {'event': 'first'}
    assert socket.receive() == {'event': 'second'}


def test_the_closed_hook_runs_when_a_socket_closes(open_socket):
    watcher = open_socket()
    before = watcher.call('closed_count')['result']
    leaving = open_socket()

    leaving.close()

    wait_until(lambda: watcher.call('closed_count')['result'] > before, 5,
               message='socket_closed_method was not called')


def test_pages_of_other_sites_cannot_open_a_socket(server, io_loop):
    from tornado.httpclient import HTTPClientError
    with pytest.raises(HTTPClientError) as raised:
        Socket(io_loop, server.port, headers={'Origin': 'http://elsewhere.example'})
    assert raised.value.code == 403


# -- the client-side worker route ----------------------------------------------------------

def test_a_client_side_worker_runs_an_operation_and_its_result_reaches_the_callback(
        open_socket, server):
    worker = open_socket('/worker', greeted=False)

    call(server.port, 'client_worker', {'add': 'op-1', 'script': 'return 6 * 7;'})

    assert worker.receive() == {'operation_id': 'op-1', 'script': 'return 6 * 7;'}
    worker.send({'operation_id': 'op-1', 'result': 42})
    wait_until(lambda: 42 in call(server.port, 'client_worker')[1]['result']['results'], 5,
               message='the callback did not get the result')


def test_a_client_side_worker_answer_for_another_operation_is_refused(open_socket, server):
    worker = open_socket('/worker', greeted=False)

    worker.send({'operation_id': 'not-mine', 'result': 1})
    assert worker.receive()['error']['value'].startswith(
        'Invalid message: operation "not-mine" is not the one this worker runs')
    worker.send('nonsense')
    assert worker.receive()['error']['value'].startswith('Invalid message: not JSON')


def test_an_operation_whose_worker_left_goes_to_the_next_worker(open_socket, server):
    first = open_socket('/worker', greeted=False)
    call(server.port, 'client_worker', {'add': 'op-2', 'script': 'work();'})
    assert first.receive()['operation_id'] == 'op-2'
    second = open_socket('/worker', greeted=False)

    first.close()

    assert second.receive() == {'operation_id': 'op-2', 'script': 'work();'}
    second.send({'operation_id': 'op-2', 'result': 'done by the second'})
    wait_until(lambda: 'done by the second' in call(server.port, 'client_worker')[1][
        'result']['results'], 5, message='the callback did not get the result')


# -- stopping --------------------------------------------------------------------------

def test_stopping_the_server_closes_websockets_with_going_away(tmp_path, io_loop):
    with ServerGroup(str(tmp_path)) as group:
        own = group.start(['--use_web_sockets', '--socket_method_module=socket_methods'])
        socket = Socket(io_loop, own.port)
        assert socket.call('echo', {'a': 1})['result'] == {'a': 1}

        own.signal(signal.SIGTERM)

        assert socket.receive() is None
        assert socket.connection.close_code == 1001
        assert own.wait_exit() == 0


def _silent_websocket(port):
    """A websocket opened by hand that will never answer a ping (nor read anything)."""
    raw = socket.create_connection(('127.0.0.1', port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode('ascii')
    raw.sendall(('GET /websocket HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
                 'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                 'Sec-WebSocket-Version: 13\r\n\r\n' % (port, key)).encode('ascii'))
    response = b''
    while b'\r\n\r\n' not in response:
        data = raw.recv(4096)
        assert data, 'the server closed the handshake: %r' % response
        response += data
    assert response.startswith(b'HTTP/1.1 101'), response
    return raw


def _closed_by_server(raw, timeout):
    """Whether the server starts closing (a close frame, or the connection ends) in time.

    Its pings are read and dropped. The server's frames are not masked, and its
    pings and close frames are short (under 126 bytes)."""
    deadline = time.time() + timeout
    received = b''
    while time.time() < deadline:
        raw.settimeout(max(0.01, deadline - time.time()))
        try:
            data = raw.recv(4096)
        except socket.timeout:
            return False
        except socket.error:  # reset
            return True
        if not data:
            return True
        received += data
        while len(received) >= 2 and len(received) >= 2 + (bytearray(received)[1] & 0x7f):
            if bytearray(received)[0] & 0x0f == 0x8:
                return True
            received = received[2 + (bytearray(received)[1] & 0x7f):]
    return False


def test_a_websocket_peer_that_never_answers_pings_is_closed(tmp_path, io_loop):
    with ServerGroup(str(tmp_path)) as group:
        # Tornado 6.5 caps the timeout at the interval; before, a timeout of one interval
        # would close a peer whose pong came just after the next check.
        interval = 0.5
        timeout = interval if tornado.version_info >= (6, 5) else 3 * interval
        own = group.start(['--use_web_sockets', '--socket_method_module=socket_methods',
                           '--socket_ping_interval=%s' % interval,
                           '--socket_ping_timeout=%s' % timeout])
        answering = Socket(io_loop, own.port)   # Tornado's client answers every ping...
        silent = _silent_websocket(own.port)
        started = time.time()
        closed = []
        watcher = threading.Thread(target=lambda: closed.append(_closed_by_server(silent, 20)))
        watcher.start()

        @gen.coroutine
        def answer_pings_while_watching():   # ...while its IOLoop runs
            while watcher.is_alive():
                yield gen.sleep(0.05)
        try:
            io_loop.run_sync(answer_pings_while_watching, timeout=30)
            assert closed == [True], 'the silent peer was never closed'
            assert time.time() - started >= timeout
        finally:
            watcher.join(30)
            silent.close()
        # The peer that answers stays open past the same time.
        assert answering.call('echo', {'a': 1})['result'] == {'a': 1}
        answering.close()
