"""TotoHandler's HTTP protocol against a real server: method selection, verbs, bodies,
parameters, answers, headers, CORS, JSONP, raw answers and batches (1.0.12's rules)."""

import json
import sys

import pytest
import six

from websupport import WebServer, json_body

ERROR_SERVER = 1000
ERROR_INVALID_METHOD = 1001
ERROR_MISSING_METHOD = 1002

# Python 2 answers are plain dicts, as 1.0.12's were: their key order is 1.0.12's when
# Python 2 hashes as by default, random under a random PYTHONHASHSEED (tox sets one).
PYTHON2_RANDOM_ORDER = sys.version_info[0] == 2 and bool(sys.flags.hash_randomization)


@pytest.fixture(scope='module')
def server():
    with WebServer() as running:
        yield running


def error_of(response):
    return response.json['error']


# -- method selection -------------------------------------------------------------------

def test_the_url_path_names_the_method(server):
    assert server.post('/api/echo', {'a': 1}).json == {'result': {'a': 1}}


def test_slashes_and_dots_in_the_path_are_the_same(server):
    by_slash = server.post('/api/sub/echo', {'a': 1}).json
    by_dot = server.post('/api/sub.echo', {'a': 1}).json
    assert by_slash == by_dot == {'result': {'sub': {'a': 1}}}


def test_the_body_names_the_method_when_the_path_is_empty(server):
    assert server.call('echo', {'b': 2}).json == {'result': {'b': 2}}
    assert server.call('sub.echo', {'b': 2}, path='/api/').json == {'result': {'sub': {'b': 2}}}


def test_the_path_wins_over_the_body(server):
    answer = server.post('/api/sub/echo', {'method': 'echo', 'parameters': {'c': 3}})
    assert answer.json == {'result': {'sub': {'c': 3}}}


def test_the_root_without_a_slash_still_routes(server):
    # 1.0.12's route pattern: /api followed by an optional slash.
    assert server.post('/apiecho', {'d': 4}).json == {'result': {'d': 4}}


def test_no_method_anywhere_is_error_1002(server):
    answer = server.post('/api', {'parameters': {}})
    assert answer.status == 200
    assert error_of(answer) == {'code': ERROR_MISSING_METHOD, 'value': 'Missing method.'}


def test_an_unknown_method_is_error_1001_naming_it(server):
    assert error_of(server.call('nowhere')) == {'code': ERROR_INVALID_METHOD,
                                                'value': "Cannot call 'nowhere'."}


def test_a_trailing_slash_names_an_empty_last_part(server):
    assert error_of(server.post('/api/echo/', {})) == {'code': ERROR_INVALID_METHOD,
                                                       'value': "Cannot call 'echo.'."}


def test_slashes_in_a_body_method_are_not_translated(server):
    assert error_of(server.call('sub/echo'))['code'] == ERROR_INVALID_METHOD


def test_a_module_without_invoke_answers_1000_as_1_0_12_did(server):
    assert error_of(server.call('nodata')) == {
        'code': ERROR_SERVER, 'value': "'module' object has no attribute 'invoke'"}


def test_paths_outside_the_route_pattern_get_tornados_404(server):
    assert server.post('/api/a-b', {}).status == 404


def test_url_selection_ignores_the_body_method():
    with WebServer(method_select='url') as url_only:
        assert url_only.post('/api/echo', {'e': 5}).json == {'result': {'e': 5}}
        assert error_of(url_only.call('echo'))['code'] == ERROR_MISSING_METHOD


def test_parameter_selection_ignores_the_path():
    with WebServer(method_select='parameter') as by_parameter:
        assert by_parameter.call('echo', {'f': 6}).json == {'result': {'f': 6}}
        assert error_of(by_parameter.post('/api/echo', {}))['code'] == ERROR_MISSING_METHOD
        answer = by_parameter.post('/api/sub/echo', {'method': 'echo', 'parameters': {'g': 7}})
        assert answer.json == {'result': {'g': 7}}


def test_an_unknown_selection_acts_as_both():
    with WebServer(method_select='whatever') as server:
        assert server.post('/api/echo', {'h': 8}).json == {'result': {'h': 8}}
        assert server.call('echo', {'h': 9}).json == {'result': {'h': 9}}


# -- verbs ------------------------------------------------------------------------------

def test_get_takes_parameters_from_the_query(server):
    answer = server.get('/api/echo?a=1&b=2&b=3')
    assert answer.json == {'result': {'a': '1', 'b': ['2', '3']}}


def test_get_ignores_a_method_in_the_query(server):
    assert error_of(server.get('/api?method=echo'))['code'] == ERROR_MISSING_METHOD


def test_get_decodes_utf8_query_values(server):
    assert server.get('/api/echo?name=%C3%A9t%C3%A9').json == {'result': {'name': u'\xe9t\xe9'}}


def test_head_sends_the_get_headers_without_a_body(server):
    answer = server.request('HEAD', '/api/echo?a=1')
    assert answer.status == 200
    assert answer.body == b''
    assert answer.header('Content-Length') == '0'
    assert answer.header_values('Content-Type') == ['text/html; charset=UTF-8',
                                                    'application/json']
    assert answer.header('Access-Control-Allow-Origin') == '*'


def test_other_verbs_get_405(server):
    assert server.request('PUT', '/api/echo', b'{}').status == 405
    assert server.request('DELETE', '/api/echo').status == 405


# -- request bodies and parameters ------------------------------------------------------

def test_a_missing_content_type_is_json(server):
    answer = server.request('POST', '/api/echo', json_body({'i': 1}))
    assert answer.json == {'result': {'i': 1}}


def test_json_types_are_matched_by_prefix(server):
    answer = server.post('/api/echo', raw=json_body({'j': 1}),
                         content_type='application/json; charset=utf-8')
    assert answer.json == {'result': {'j': 1}}


def test_parameters_is_used_when_truthy(server):
    assert server.call('echo', {'k': 1}).json == {'result': {'k': 1}}


def test_empty_parameters_pass_the_whole_body(server):
    answer = server.post('/api', {'method': 'echo', 'parameters': {}})
    assert answer.json == {'result': {'method': 'echo', 'parameters': {}}}


def test_a_body_without_parameters_is_passed_whole(server):
    assert server.post('/api/echo', {'x': 1}).json == {'result': {'x': 1}}


def test_a_list_body_is_passed_as_it_is(server):
    assert server.post('/api/echo', [1, 2]).json == {'result': [1, 2]}


def test_an_empty_json_body_means_no_parameters(server):
    answer = server.post('/api/echo', raw=b'', content_type='application/json')
    assert answer.status == 200
    assert answer.json == {'result': {}}


def test_form_bodies_give_lists_and_ignore_a_method_field(server):
    answer = server.post('/api/echo', raw=b'a=1&a=2&b=3',
                         content_type='application/x-www-form-urlencoded')
    assert answer.json == {'result': {'a': ['1', '2'], 'b': ['3']}}
    at_root = server.post('/api', raw=b'method=echo',
                          content_type='application/x-www-form-urlencoded')
    assert error_of(at_root)['code'] == ERROR_MISSING_METHOD


def test_form_parameters_include_the_query(server):
    answer = server.post('/api/echo?q=0', raw=b'a=1',
                         content_type='application/x-www-form-urlencoded')
    assert answer.json == {'result': {'q': ['0'], 'a': ['1']}}


def test_multipart_bodies_give_arguments_and_files(server):
    boundary = 'xXxXx'
    body = ('--{0}\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
            '--{0}\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n'
            'Content-Type: text/plain\r\n\r\nfile text\r\n--{0}--\r\n').format(boundary)
    answer = server.post('/api/upload', raw=body.encode('ascii'),
                         content_type='multipart/form-data; boundary=' + boundary)
    assert answer.json == {'result': {
        'arguments': {'field': ['value']},
        'files': {'upload': [{'filename': 'a.txt', 'body': 'file text', 'body_is_bytes': True,
                              'content_type': 'text/plain', 'is_dict': True}]}}}


def test_other_content_types_give_no_parameters(server):
    answer = server.post('/api/echo', raw=b'<xml/>', content_type='text/xml')
    assert answer.json == {'result': {}}


def test_msgpack_bodies_are_answered_in_msgpack_when_enabled():
    msgpack = pytest.importorskip('msgpack')
    with WebServer(msgpack_enabled=True) as server:
        answer = server.post('/api', raw=msgpack.dumps({'method': 'echo',
                                                        'parameters': {'m': [1, 2]}}),
                             content_type='application/msgpack')
        assert answer.header_values('Content-Type')[-1] == 'application/msgpack'
        assert msgpack.loads(answer.body) == {'result': {'m': [1, 2]}}
        broken = server.post('/api/echo', raw=b'\xc1', content_type='application/msgpack')
        assert broken.status == 400
        assert broken.json['error']['code'] == ERROR_SERVER


def test_msgpack_bodies_are_ignored_when_disabled(server):
    answer = server.post('/api/echo', raw=b'\x81\xa1a\x01', content_type='application/msgpack')
    assert answer.json == {'result': {}}


def test_bson_bodies_are_answered_in_bson_when_enabled():
    bson = pytest.importorskip('bson')
    if not hasattr(bson, 'BSON'):
        pytest.skip("the installed bson is not pymongo's")
    with WebServer(bson_enabled=True) as server:
        request = bson.BSON.encode({'method': 'echo', 'parameters': {'b': 1}})
        answer = server.post('/api', raw=bytes(request), content_type='application/bson')
        assert answer.header_values('Content-Type')[-1] == 'application/bson'
        assert bson.BSON(answer.body).decode() == {'result': {'b': 1}}


# -- answers -----------------------------------------------------------------------------

def test_answers_carry_two_content_types_as_1_0_12s_did(server):
    answer = server.post('/api/echo', {})
    assert answer.header_values('Content-Type') == ['text/html; charset=UTF-8',
                                                    'application/json']


def test_single_content_type_sends_one():
    with WebServer(single_content_type=True) as server:
        answer = server.post('/api/echo', {})
        assert answer.header_values('Content-Type') == ['application/json']


def test_json_is_written_with_the_default_separators_and_ascii_escapes(server):
    answer = server.post('/api/echo', {'text': u'\xe9', 'list': [1, 2]})
    assert answer.body in (b'{"result": {"text": "\\u00e9", "list": [1, 2]}}',
                           b'{"result": {"list": [1, 2], "text": "\\u00e9"}}')


@pytest.mark.parametrize('value', [0, False, '', [], {}])
def test_falsy_results_are_sent(server, value):
    assert server.call('constant', {'value': value}).json == {'result': value}


def test_a_none_result_is_an_empty_200(server):
    answer = server.call('constant', {})
    assert answer.status == 200
    assert answer.body == b''
    assert answer.header('Access-Control-Allow-Origin') == '*'


def test_toto_errors_keep_their_code_and_status_200(server):
    answer = server.call('fail', {'code': 4242, 'value': 'custom'})
    assert answer.status == 200
    assert answer.json == {'error': {'code': 4242, 'value': 'custom'}}
    if not PYTHON2_RANDOM_ORDER:
        # 1.0.12's bytes: its error dict's order when Python 2 hashes as by default.
        assert answer.body == b'{"error": {"code": 4242, "value": "custom"}}'


def test_other_exceptions_are_error_1000_with_their_text(server):
    assert error_of(server.call('fail', {'value': 'boom'})) == {'code': ERROR_SERVER,
                                                                'value': 'boom'}


def test_an_answer_that_cannot_be_encoded_is_error_1000(server):
    answer = server.call('unencodable')
    assert answer.status == 200
    assert answer.json['error']['code'] == ERROR_SERVER
    assert 'cannot be encoded' in answer.json['error']['value']


def test_answers_carry_the_cors_headers(server):
    for answer in (server.post('/api/echo', {}), server.get('/api/echo')):
        assert answer.header('Access-Control-Allow-Origin') == '*'
        assert answer.header('Access-Control-Expose-Headers') == 'x-toto-hmac'


# -- CORS ----------------------------------------------------------------------------------

def test_preflight_answers_1_0_12s_headers(server):
    answer = server.request('OPTIONS', '/api/echo', headers={
        'Origin': 'http://elsewhere.example', 'Access-Control-Request-Method': 'POST'})
    assert answer.status == 200
    assert answer.body == b''
    assert answer.header('Access-Control-Allow-Headers') == \
        'origin,x-toto-session-id,x-toto-hmac,content-type'
    assert answer.header('Access-Control-Allow-Origin') == '*'
    assert answer.header('Access-Control-Allow-Methods') == 'HEAD,POST,OPTIONS,GET'
    assert answer.header('Access-Control-Expose-Headers') == 'x-toto-hmac'
    assert answer.header('Access-Control-Allow-Credentials') is None


def test_preflight_does_not_echo_requested_headers_by_default(server):
    answer = server.request('OPTIONS', '/api/echo', headers={
        'Access-Control-Request-Headers': 'X-Anything, Content-Type'})
    assert answer.header('Access-Control-Allow-Headers') == \
        'origin,x-toto-session-id,x-toto-hmac,content-type'


def test_preflight_echoes_requested_headers_with_star():
    with WebServer(cors_allow_headers=['*']) as server:
        answer = server.request('OPTIONS', '/api/echo', headers={
            'Access-Control-Request-Headers': 'X-Anything, Content-Type'})
        assert answer.header('Access-Control-Allow-Headers') == \
            'origin,x-toto-session-id,x-toto-hmac,content-type,x-anything'


def test_preflight_allows_configured_headers():
    with WebServer(cors_allow_headers=['X-Requested-With']) as server:
        answer = server.request('OPTIONS', '/api/echo')
        assert answer.header('Access-Control-Allow-Headers') == \
            'origin,x-toto-session-id,x-toto-hmac,content-type,x-requested-with'


def test_preflight_for_an_unsupported_method_is_a_405_without_cors(server):
    answer = server.request('OPTIONS', '/api/echo',
                            headers={'Access-Control-Request-Method': 'PUT'})
    assert answer.status == 405
    assert answer.header('Access-Control-Allow-Origin') is None


def test_allow_origin_is_read_when_configured():
    with WebServer(allow_origin='https://app.example') as server:
        assert server.post('/api/echo', {}).header('Access-Control-Allow-Origin') == \
            'https://app.example'
        assert server.request('OPTIONS', '/api').header('Access-Control-Allow-Origin') == \
            'https://app.example'


def test_a_list_of_origins_answers_each_listed_origin_with_itself():
    with WebServer(allow_origin='https://a.example, https://b.example') as server:
        listed = server.post('/api/echo', {}, headers={'Origin': 'https://b.example'})
        assert listed.header('Access-Control-Allow-Origin') == 'https://b.example'
        assert listed.header('Vary') == 'Origin'
        other = server.post('/api/echo', {}, headers={'Origin': 'https://c.example'})
        assert other.header('Access-Control-Allow-Origin') is None


# -- JSONP and raw answers ------------------------------------------------------------------

def test_jsonp_wraps_the_answer_in_the_callback(server):
    answer = server.call('padded', {'jsonp': 'window.cb', 'v': 1})
    assert answer.body == b'window.cb({"padded": {"v": 1}})'
    assert answer.header_values('Content-Type')[-1] == 'text/javascript'


def test_jsonp_without_a_callback_answers_json(server):
    assert server.call('padded', {'v': 2}).json == {'result': {'padded': {'v': 2}}}


def test_jsonp_with_a_named_parameter_under_another_decorator(server):
    answer = server.get('/api/padded_named?x=1&callback=jQuery_123.cb%5B0%5D')
    assert answer.body == b'jQuery_123.cb[0]({"x": "1"})'


@pytest.mark.parametrize('callback', ['alert(1);cb', 'cb()', '<script>', '1abc', 'a..b',
                                      'a' * 300])
def test_jsonp_refuses_callbacks_that_are_not_javascript_names(server, callback):
    answer = server.call('padded', {'jsonp': callback})
    assert answer.status == 400
    assert answer.json['error']['code'] == ERROR_SERVER
    assert b'alert' not in answer.body


def test_raw_answers_are_the_bytes_with_octet_stream(server):
    answer = server.call('raw', {'text': 'plain words'})
    assert answer.body == b'plain words'
    assert answer.header_values('Content-Type') == ['text/html; charset=UTF-8',
                                                    'application/octet-stream']


def test_a_raw_method_may_choose_its_content_type(server):
    answer = server.call('raw', {'text': 'a,b', 'type': 'text/csv'})
    assert answer.header_values('Content-Type')[-1] == 'text/csv'
    assert answer.body == b'a,b'


# -- batches ------------------------------------------------------------------------------------

def test_a_batch_answers_each_key(server):
    answer = server.post('/api', {'batch': {
        'one': {'method': 'echo', 'parameters': {'n': 1}},
        'two': {'method': 'fail', 'parameters': {'code': 7, 'value': 'no'}},
        'three': {'method': 'constant', 'parameters': {}}}})
    assert answer.json == {'batch': {
        'one': {'result': {'n': 1}},
        'two': {'error': {'code': 7, 'value': 'no'}},
        'three': {'result': None}}}


def test_a_batch_overrides_the_url_method(server):
    answer = server.post('/api/fail', {'batch': {'k': {'method': 'echo',
                                                       'parameters': {'z': 1}}}})
    assert answer.json == {'batch': {'k': {'result': {'z': 1}}}}


def test_batch_entries_take_their_parameters_as_they_are(server):
    # Unlike a plain request, an entry's empty parameters are not replaced by the entry.
    answer = server.post('/api', {'batch': {'k': {'method': 'echo', 'parameters': {}}}})
    assert answer.json == {'batch': {'k': {'result': {}}}}


def test_a_batch_waits_for_asynchronous_and_coroutine_entries(server):
    answer = server.post('/api', {'batch': {
        'a': {'method': 'later', 'parameters': {'value': 'x', 'delay': 0.05}},
        'b': {'method': 'coroutine_method', 'parameters': {}},
        'c': {'method': 'later_value'}}})
    assert answer.json == {'batch': {
        'a': {'result': {'later': 'x'}},
        'b': {'result': {'slept': True}},
        'c': {'result': {'now': True, 'async': False}}}}


def test_an_empty_batch_is_answered(server):
    # 1.0.12 never answered it.
    answer = server.post('/api', {'batch': {}}, timeout=5)
    assert answer.json == {'batch': {}}


def test_a_batch_that_is_not_an_object_is_a_400(server):
    answer = server.post('/api', {'batch': [1, 2]})
    assert answer.status == 400
    assert answer.json['error']['code'] == ERROR_SERVER


def test_batch_entries_without_a_method_fail_alone(server):
    answer = server.post('/api', {'batch': {'a': 'not an object',
                                            'b': {'method': 'echo', 'parameters': {'q': 1}}}})
    assert answer.json == {'batch': {
        'a': {'error': {'code': ERROR_MISSING_METHOD, 'value': 'Missing method.'}},
        'b': {'result': {'q': 1}}}}


def test_with_url_selection_every_batch_entry_misses_its_method():
    with WebServer(method_select='url') as server:
        answer = server.post('/api', {'batch': {'a': {'method': 'echo'}}})
        assert answer.json == {'batch': {'a': {'error': {
            'code': ERROR_MISSING_METHOD, 'value': 'Missing method.'}}}}


def test_batch_entries_run_in_sorted_key_order():
    names = []
    hooks = {'set_before_handler': lambda handler, transaction_id, name: names.append(name)}
    with WebServer(hooks=hooks) as server:
        server.post('/api', {'batch': dict(
            (key, {'method': 'constant', 'parameters': {'value': key}})
            for key in ('c', 'a', 'b'))})
    assert names == ['<batch>', 'constant', 'constant', 'constant']


def test_batch_methods_get_a_proxy_that_answers_their_key():
    seen = []

    def before(handler, transaction_id, name):
        seen.append(transaction_id)

    with WebServer(hooks={'set_before_handler': before}) as server:
        answer = server.post('/api', {'batch': {
            'x': {'method': 'later', 'parameters': {'value': 1, 'delay': 0.02}},
            'y': {'method': 'later', 'parameters': {'value': 2, 'delay': 0.01}}}})
    assert answer.json == {'batch': {'x': {'result': {'later': 1}},
                                     'y': {'result': {'later': 2}}}}
    assert len(set(seen)) == 3  # the batch's id and one per proxy


def test_batch_proxy_attributes():
    from toto.handler import BatchHandlerProxy

    class Target(object):
        value = 1

    target = Target()
    proxy = BatchHandlerProxy(target, 'key')
    assert proxy.handler is target and proxy.request_key == 'key'
    assert proxy.value == 1
    proxy.value = 2
    assert target.value == 2
    setattr(proxy, 'async', True)
    assert getattr(proxy, 'async') is True and 'async' not in target.__dict__
    assert proxy.transaction_id != BatchHandlerProxy(target, 'key').transaction_id


def test_keep_alive_connections_serve_several_requests(server):
    with server.connection() as connection:
        for number in range(3):
            answer = connection.request('POST', '/api/echo', json_body({'n': number}))
            assert json.loads(answer.body.decode('utf-8')) == {'result': {'n': number}}


def test_text_results_stay_text(server):
    answer = server.call('echo', {'word': u'\u65e5\u672c'})
    assert answer.json['result']['word'] == u'\u65e5\u672c'
    assert isinstance(answer.json['result']['word'], six.text_type)
