"""Differential tests of the web half: TotoServer under Toto 1.0.12 and this package answer alike.

``web_app`` (tests/oracle_apps) is a method package written as 1.0.12 applications write
theirs; the kit (tests/oracle_web.py) serves it with the original 1.0.12 ``TotoServer``
(Python 2.7, tornado 4.5.3) and with this package's, sends both the same HTTP requests
and compares status, body, content types, CORS headers, cookies and the response HMAC
(each side checked with the key it handed out).  Every intended difference is listed
with its reason in tests/oracle_differences.py; any other fails the test.

The shared pairs run twice: against this package (``vs-this-package``) and against
1.0.12 itself (``vs-1.0.12``), which shows that the masks hide only what is random.
"""

import socket
import time

import pytest

import oracle
import oracle_differences
from oracle import SideFile
import oracle_web
from oracle_web import Call, WebPair

AGAINST = [oracle.COMPAT, oracle.ORIGINAL]
AGAINST_IDS = ['vs-this-package', 'vs-1.0.12']
STARTUP_FUNCTION = 'web_app_startup.init'
COOKIE_SECRET = 'a cookie secret for the differential tests, not for use elsewhere'


def app_conf(**extra):
    """web_app's conf file: the json database (persistent, a file of each side's own)
    and the startup function that installs the hooks."""
    conf = {'database': 'json', 'db_host': SideFile('db.json', '{}'), 'db_port': 1,
            'startup_function': STARTUP_FUNCTION}
    conf.update(extra)
    return conf


def method(name, **parameters):
    """A JSON body naming its method: ``{"method": name, "parameters": parameters}``."""
    return {'method': name, 'parameters': parameters}




# -- the kit's comparison, without servers --------------------------------------------------------

def _comparison(case, original, other):
    aspects = {oracle.ORIGINAL: original, oracle.COMPAT: other}
    return oracle_web.WebComparison(case, Call(), {}, aspects)


ANSWER = {'status': 200, 'body': {'result': {'a': 1, 'b': 2}},
          'key_order': {'.': ['result'], '.result': ['a', 'b']},
          'cookies': {'toto-session-id': {'value': '<kept:x>', 'path': '/',
                                          'expires': '<now + 21159 days>'}}}


def test_a_part_that_differs_in_every_answer_is_accepted_by_its_http_entry():
    reordered = dict(ANSWER, key_order={'.': ['result'], '.result': ['b', 'a']},
                     cookies={'toto-session-id': {'value': '<kept:x>', 'path': '/',
                                                  'expires': '<now + 365 days>',
                                                  'httponly': True}})
    comparison = oracle_web.check(_comparison('kit.any_case', ANSWER, reordered))
    assert comparison.differences == [oracle_differences.DIFFERENCES['http.cookies'],
                                      oracle_differences.DIFFERENCES['http.key_order']]


def test_other_keys_or_values_fail_even_where_the_order_may_differ():
    renamed = dict(ANSWER, key_order={'.': ['result'], '.result': ['a', 'c']})
    with pytest.raises(AssertionError) as failure:
        oracle_web.check(_comparison('kit.any_case', ANSWER, renamed))
    assert 'unlisted difference' in str(failure.value)
    resigned = dict(ANSWER, cookies={'toto-session-id': {
        'value': '<kept:y>', 'path': '/', 'expires': '<now + 365 days>'}})
    with pytest.raises(AssertionError):
        oracle_web.check(_comparison('kit.any_case', ANSWER, resigned))


def test_the_oracle_against_itself_accepts_no_difference():
    reordered = dict(ANSWER, key_order={'.': ['result'], '.result': ['b', 'a']})
    with pytest.raises(AssertionError) as failure:
        oracle_web.check(_comparison('kit.any_case', ANSWER, reordered), strict=True)
    assert 'differs from itself' in str(failure.value)


def test_a_case_entry_sees_the_whole_answer():
    hanging = {'status': '<no answer within 3 s>'}
    answered = {'status': 200, 'body': {'batch': {}}, 'cors': oracle_differences._CORS,
                'content_type': ['text/html; charset=UTF-8', 'application/json']}
    comparison = oracle_web.check(_comparison('batch.empty', hanging, answered))
    assert comparison.differences == [oracle_differences.DIFFERENCES['batch.empty']]
    with pytest.raises(AssertionError) as failure:
        oracle_web.check(_comparison('batch.empty', hanging, dict(answered, status=500)))
    assert 'does not accept' in str(failure.value)


def test_answers_are_read_as_clients_read_them():
    raw = (b'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n'
           b'Content-Type: application/json\r\nX-Toto-Hmac: %s\r\n'
           b'Set-Cookie: toto-session-id=abc; expires=Fri, 10 Nov 2084 10:00:00 GMT; Path=/\r\n'
           b'Access-Control-Allow-Methods: POST,GET\r\n\r\n')
    body = b'{"session": {"session_id": "S" , "expires": 1}, "result": 1}'
    side = oracle_web.WebSide.__new__(oracle_web.WebSide)
    side.kept = {'s': {'session_id': 'S', 'key': 'k'}}
    mac = oracle_web.response_hmac('k', 'S', body).encode('ascii')
    aspects = oracle_web.answer_aspects(oracle_web.parse_answer(raw % mac + body), side)
    assert aspects['content_type'] == ['text/html; charset=UTF-8', 'application/json']
    assert aspects['hmac'] == 'valid'
    assert aspects['cors'] == {'access-control-allow-methods': ['GET', 'POST']}
    assert aspects['cookies']['toto-session-id']['path'] == '/'
    assert aspects['body'] == {'session': {'session_id': '<kept:s>', 'expires': '<now + %d days>'
                                           % round((1 - time.time()) / 86400)}, 'result': 1}
    assert aspects['json_format'] == 'other'  # the space before the comma
    aspects = oracle_web.answer_aspects(oracle_web.parse_answer(raw % b'AAAA' + body), side)
    assert aspects['hmac'] == 'invalid'


@pytest.fixture(scope='module', params=AGAINST, ids=AGAINST_IDS)
def web_pair(request, tmp_path_factory):
    """web_app under 1.0.12 and the other side with 1.0.12's default web options."""
    with WebPair(str(tmp_path_factory.mktemp('web-pair')), against=request.param) as pair:
        pair.start_app('web_app', conf=app_conf())
        yield pair


@pytest.fixture(scope='module', params=AGAINST, ids=AGAINST_IDS)
def hmac_pair(request, tmp_path_factory):
    """web_app with ``hmac_enabled``: signed requests and responses."""
    with WebPair(str(tmp_path_factory.mktemp('hmac-pair')), against=request.param) as pair:
        pair.start_app('web_app', conf=app_conf(hmac_enabled=True))
        yield pair


# -- the cases ---------------------------------------------------------------------------------

ECHO = {'text': 'tea', 'cups': 2, 'price': 2.5, 'nothing': None, 'yes': True,
        'list': [1, 'two', [3.0]], 'nested': {'k': {'v': -1}}}

GET_CASES = [
    ('get.query', Call('GET', '/echo', query=[('a', '1'), ('b', '2'), ('b', '3')])),
    ('get.no_query', Call('GET', '/echo')),
    ('get.non_ascii_query', Call('GET', '/echo',
                                 query=[('name', u'th\xe9 \u2615'.encode('utf-8'))])),
    ('get.method_in_the_query', Call('GET', '/', query=[('method', 'echo')])),
    ('get.body_ignored', Call('GET', '/echo', json=method('a.b', x=1))),
    ('get.nested_path', Call('GET', '/a/b', query=[('q', '1')])),
    ('get.dotted_path', Call('GET', '/a.b')),
    ('get.trailing_slash', Call('GET', '/echo/')),
    ('get.unknown_method', Call('GET', '/nope')),
    ('get.dash_not_routed', Call('GET', '/a-b')),
    ('get.handler_attributes', Call('GET', '/handler_info')),
    ('get.startup_function', Call('GET', '/startup_info')),
]

POST_CASES = [
    ('post.body_method', Call(json=method('echo', **ECHO))),
    ('post.non_ascii', Call(json=method('echo', text=u'th\xe9 \u2615'))),
    ('post.path_method', Call(path='/echo', json={'parameters': {'x': 1}})),
    ('post.path_wins', Call(path='/echo', json=method('a.b', x=1))),
    ('post.nested_body_method', Call(json=method('a.b', x=1))),
    ('post.slash_in_body_method', Call(json=method('a/b'))),
    ('post.whole_body', Call(path='/echo', json={'x': 1, 'y': [2]})),
    ('post.empty_parameters', Call(json={'method': 'echo', 'parameters': {}})),
    ('post.list_body', Call(path='/echo', json=[1, 2, 3])),
    ('post.no_content_type', Call(path='/echo', body=b'{"parameters": {"x": 1}}')),
    ('post.missing_method', Call(json={'parameters': {'x': 1}})),
    ('post.empty_object', Call(json={})),
    ('post.unknown_method', Call(json=method('nope'))),
    ('post.form', Call(path='/echo', form=[('a', '1'), ('a', '2'), ('b', '3')])),
    ('post.form_method_ignored', Call(form=[('method', 'echo'), ('a', '1')])),
    ('post.multipart', Call(path='/echo', fields=[('a', '1'), ('b', 'two')],
                            files=[('upload', 'notes.txt', 'text/plain', b'hello file')])),
    ('post.other_content_type', Call(path='/echo', body=b'x=1', content_type='text/plain')),
    ('post.msgpack_not_enabled', Call(path='/echo', body=b'\x81\xa1x\x01',
                                      content_type='application/msgpack')),
    ('post.handler_attributes', Call(path='/handler_info', json={})),
    ('verbs.put_not_allowed', Call('PUT', '/echo', json={})),
    ('verbs.delete_not_allowed', Call('DELETE', '/echo')),
    ('verbs.head_plain', Call('HEAD', '/echo', query=[('a', '1')])),
    ('verbs.head_handler_attributes', Call('HEAD', '/handler_info')),
]

ANSWER_CASES = [
    ('answers.none_is_an_empty_body', Call(json=method('nothing'))),
    ('answers.zero_is_sent', Call(json=method('falsy', value=0))),
    ('answers.false_is_sent', Call(json=method('falsy', value=False))),
    ('answers.empty_text_is_sent', Call(json=method('falsy', value=''))),
    ('errors.toto_exception', Call(json=method('toto_error', item='scones'))),
    ('errors.plain_exception', Call(json=method('plain_error', state='cold'))),
    ('errors.key_error', Call(json=method('key_error'))),
    ('errors.package_without_invoke', Call(json=method('a'))),
]

DECORATOR_CASES = [
    ('requires.given', Call(json=method('requires_ab', a=1, b=2))),
    ('requires.missing_one', Call(json=method('requires_ab', a=1))),
    ('requires.missing_both', Call(json=method('requires_ab'))),
    ('default_parameters.filled_in', Call(json=method('defaults'))),
    ('default_parameters.given_wins', Call(json=method('defaults', size=5, extra='x'))),
    ('authenticated.without_session', Call(json=method('whoami'))),
    ('authenticated.unknown_session', Call(json=method('whoami'),
                                          headers=[('x-toto-session-id', 'A' * 22)])),
    ('optionally_authenticated.without_session', Call(json=method('maybe_whoami'))),
    ('authenticated_with_parameter.without_session', Call(json=method('whoami_param'))),
    ('authenticated_with_parameter.unknown_session',
     Call(json=method('whoami_param', session_id='A' * 22))),
    ('raw_response.bytes', Call(json=method('raw'))),
    ('raw_response.own_content_type', Call('GET', '/raw_text', query=[('name', 'al')])),
    ('jsonp.with_callback', Call('GET', '/jsonp_echo', query=[('jsonp', 'cb'), ('x', '1')])),
    ('jsonp.without_callback', Call('GET', '/jsonp_echo', query=[('x', '1')])),
    ('jsonp.named_callback', Call('GET', '/jsonp_named', query=[('callback', 'cb')])),
    ('jsonp.dotted_callback', Call('GET', '/jsonp_echo', query=[('jsonp', 'app.cb')])),
    ('jsonp.script_as_callback', Call('GET', '/jsonp_echo',
                                      query=[('jsonp', 'alert(document.cookie);cb')])),
    ('error_redirect.mapped_code', Call('GET', '/redirect', query=[('fail', 'stock')])),
    ('error_redirect.default', Call('GET', '/redirect', query=[('fail', 'other')])),
    ('error_redirect.no_error', Call('GET', '/redirect')),
    ('client_error.browser', Call(json=method('client_error', client_error='oops',
                                              client_type='browser_js'))),
    ('client_error.other_client', Call(json=method('client_error', client_error='oops',
                                                   client_type='ios'))),
    ('client_error.missing', Call(json=method('client_error'))),
]

ASYNC_CASES = [
    ('asynchronous.from_a_thread', Call(json=method('later', order='tea'))),
    ('asynchronous.error_from_a_thread', Call(json=method('later_error'))),
    ('asynchronous.from_the_loop', Call('GET', '/later_loop', query=[('a', '1')])),
    ('asynchronous.value_at_once', Call(json=method('later_value'))),
    ('coroutine.value', Call(json=method('coro', x=1))),
    ('coroutine.error', Call(json=method('coro_error'))),
    ('coroutine.task_queue', Call('GET', '/task', query=[('n', '7')])),
    ('verbs.head_asynchronous', Call('HEAD', '/later')),
    ('verbs.head_coroutine', Call('HEAD', '/coro')),
]

BATCH_CASES = [
    ('batch.mixed', Call(json={'batch': {
        'b': method('echo', x=1), 'a': method('later', y=2), 'c': method('nothing'),
        'd': method('toto_error'), 'e': method('coro', z=3), 'f': method('nope'),
        'g': method('later_error'), 'h': method('falsy', value=0)}})),
    ('batch.overrides_the_url', Call(path='/nope', json={'batch': {'k': method('echo', x=1)}})),
    ('batch.entry_without_method', Call(json={'batch': {'k': {'parameters': {'x': 1}}}})),
    ('batch.entry_without_parameters', Call(json={'batch': {'k': {'method': 'echo'}}})),
    ('batch.handler_is_a_proxy', Call(json={'batch': {'p': method('handler_info')}})),
    ('batch.requires', Call(json={'batch': {'k': method('requires_ab', a=1)}})),
]

OPTIONS_CASES = [
    ('options.plain', Call('OPTIONS', '/echo')),
    ('options.requested_headers',
     Call('OPTIONS', '/echo', headers=[('Origin', 'http://app.example'),
                                       ('Access-Control-Request-Method', 'POST'),
                                       ('Access-Control-Request-Headers',
                                        'Content-Type, X-Toto-Session-Id, X-Custom')])),
    ('options.unsupported_method',
     Call('OPTIONS', '/echo', headers=[('Access-Control-Request-Method', 'PUT')])),
    ('options.root', Call('OPTIONS', '/')),
]

HOSTILE_CASES = [
    ('hostile.invalid_json', Call(path='/echo', body=b'{"x": ', content_type='application/json')),
    ('hostile.empty_json_body', Call(path='/echo', body=b'', content_type='application/json')),
    ('hostile.invalid_utf_encoding', Call(path='/echo', body=b'{"x": "\xff\xfe"}',
                              content_type='application/json')),
    ('hostile.deep_nesting', Call(path='/echo', body=b'[' * 100000 + b']' * 100000,
                                  content_type='application/json')),
    ('hostile.json_scalar_body', Call(path='/echo', json=7)),
    ('hostile.batch_not_an_object', Call(json={'batch': [1, 2]})),
    ('hostile.method_not_text', Call(json={'method': 7})),
    ('hostile.private_name', Call('GET', '/_private')),
    ('hostile.dunder', Call('GET', '/__init__')),
    ('hostile.through_an_imported_module', Call('GET', '/echo/json')),
    ('hostile.function_attribute', Call('GET', '/a/b/invoke')),
    ('hostile.non_ascii_user_id', Call(json=method('account.create', user_id=u'j\xf6rg',
                                                   password='pw'))),
]

ALL_CASES = (GET_CASES + POST_CASES + ANSWER_CASES + DECORATOR_CASES + ASYNC_CASES
             + BATCH_CASES + OPTIONS_CASES + HOSTILE_CASES)


@pytest.mark.parametrize('case,call', ALL_CASES, ids=[case for case, _ in ALL_CASES])
def test_answers_match(web_pair, case, call):
    web_pair.compare(case, call)


# -- what the cases pin down of 1.0.12 -----------------------------------------------------------

def test_get_parameters_are_strings_or_lists(web_pair):
    comparison = web_pair.compare('get.query', GET_CASES[0][1])
    assert comparison.original['body'] == {'result': {'a': '1', 'b': ['2', '3']}}
    assert comparison.original['cors'] == {'access-control-allow-origin': '*',
                                           'access-control-expose-headers': ['x-toto-hmac']}


def test_errors_are_200_with_code_and_value(web_pair):
    comparison = web_pair.compare('post.missing_method', Call(json={'parameters': {'x': 1}}))
    assert comparison.original['status'] == 200
    assert comparison.original['body'] == {'error': {'code': 1002, 'value': 'Missing method.'}}


def test_empty_batch_never_answers_in_1_0_12(web_pair):
    # 1.0.12 answers any other call here within milliseconds; its empty batch never.
    comparison = web_pair.compare('batch.empty', Call(json={'batch': {}}, timeout=1.0))
    assert comparison.original == {'status': '<no answer within 1 s>'}


def test_hooks_see_every_method_and_the_batch(web_pair):
    # What the hooks saw before depends on the tests that ran before: cleared unseen.
    web_pair.send(Call(json=method('hooks_log', clear=True)))
    web_pair.compare('hooks.echo', Call(json=method('echo')))
    web_pair.compare('hooks.batch', Call(json={'batch': {'b': method('echo'),
                                                         'a': method('nothing')}}))
    logged = web_pair.compare('hooks.log', Call(json=method('hooks_log')))
    assert logged.original['body']['result']['before'] == [
        'echo', '<batch>', 'nothing', 'echo', 'hooks_log']


def test_on_connection_close_is_called_when_the_client_leaves(web_pair):
    """A method that never answers; the client hangs up once the method was invoked."""
    web_pair.compare('on_close.before', Call(json=method('on_close_log')))
    web_pair.send(Call(json=method('hooks_log', clear=True)))
    for side in web_pair.sides:
        sock = socket.create_connection(('127.0.0.1', side.port), 10)
        try:
            sock.sendall(Call(path='/on_close', json={}).encode(side))
            _wait_for(side, 'hooks_log', lambda result: 'on_close' in result['before'])
        finally:
            sock.close()
        _wait_for(side, 'on_close_log', lambda result: result['closed'] >= 1, timeout=5.0)
    comparison = web_pair.compare('on_close.after', Call(json=method('on_close_log')))
    assert comparison.original['body'] == {'result': {'closed': 1}}


def _wait_for(side, name, predicate, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        result = side.send(Call(json=method(name))).json()['result']
        if predicate(result):
            return result
        if time.time() > deadline:
            raise AssertionError('%s: %s never showed it (%r)\n%s'
                                 % (side.title, name, result, side.describe()))
        time.sleep(0.02)


# -- sessions and the built-in account methods --------------------------------------------------

def test_accounts_and_sessions_without_hmac(web_pair):
    pair = web_pair
    pair.compare('accounts.create', Call(json=method('account.create', user_id='Alice',
                                                     password='secret', team='blue')),
                 keep='alice')
    pair.compare('accounts.create_taken', Call(json=method(
        'account.create', user_id='ALICE', password='other')))
    pair.compare('accounts.create_without_password',
                 Call(json=method('account.create', user_id='bob')))
    login = pair.compare('accounts.login', Call(json=method(
        'account.login', user_id='ALICE', password='secret')), keep='alice')
    assert login.original['body']['result'] == {
        'session_id': '<kept:alice>', 'user_id': 'alice', 'expires': '<now + 365 days>'}
    pair.compare('accounts.login_wrong_password',
                 Call(json=method('account.login', user_id='alice', password='wrong')))
    pair.compare('accounts.login_unknown_user',
                 Call(json=method('account.login', user_id='nobody', password='secret')))
    whoami = pair.compare('authenticated.with_session',
                          Call(json=method('whoami'), session='alice'))
    assert whoami.original['body']['result'] == {'user_id': 'alice'}
    pair.compare('authenticated.get_with_session', Call('GET', '/whoami', session='alice'))
    pair.compare('optionally_authenticated.with_session',
                 Call(json=method('maybe_whoami'), session='alice'))
    pair.compare('authenticated_with_parameter.with_session',
                 _with_session_parameter('alice', extra=1))
    for count in (1, 2):
        counted = pair.compare('sessions.increment', Call(path='/increment', json={},
                                                          session='alice'))
        assert counted.original['body']['result'] == {'count': count}
    pair.compare('sessions.batch_with_session', Call(json={'batch': {
        'a': method('whoami'), 'b': method('increment')}}, session='alice'))
    pair.compare('accounts.update_without_password',
                 Call(json=method('account.update', colour='red'), session='alice'))
    pair.compare('accounts.logout', Call(json=method('account.logout'), session='alice'))
    refused = pair.compare('accounts.after_logout',
                           Call(json=method('whoami'), session='alice'))
    assert refused.original['body'] == {'error': {'code': 1004, 'value': 'Not authorized'}}


def _with_session_parameter(name, **parameters):
    """A call of ``whoami_param`` carrying the kept session's id as a parameter."""
    return _SessionParameterCall(name, parameters)


class _SessionParameterCall(Call):
    def __init__(self, name, parameters):
        Call.__init__(self, json=method('whoami_param', **parameters))
        self.session_parameter = name

    def encode(self, side):
        self.json = method('whoami_param', session_id=side.kept[self.session_parameter][
            'session_id'], **self.json['parameters'])
        try:
            return Call.encode(self, side)
        finally:
            self.json['parameters'].pop('session_id')


def test_anonymous_sessions(web_pair):
    first = web_pair.compare('anonymous_session.created', Call(json=method('anonymous')),
                             keep='anonymous')
    assert first.original['body']['session']['user_id'] == ''
    again = web_pair.compare('anonymous_session.kept',
                             Call(json=method('anonymous'), session='anonymous'))
    assert again.original['body']['result'] == {'user_id': '', 'visits': 2}
    web_pair.compare('anonymous_session.not_authenticated',
                     Call(json=method('whoami'), session='anonymous'))


def test_hmac_signed_requests_and_responses(hmac_pair):
    pair = hmac_pair
    created = pair.compare('hmac.create', Call(json=method(
        'account.create', user_id='Carol', password='pw')), keep='carol')
    assert created.original['hmac'] == 'valid'
    assert created.original['body']['result']['key'] == '<kept:carol.key>'
    login = pair.compare('hmac.login', Call(json=method('account.login', user_id='carol',
                                                        password='pw')), keep='carol')
    assert login.original['hmac'] == 'valid'
    signed = pair.compare('hmac.signed_call', Call(path='/whoami', json={}, session='carol',
                                                   sign=True))
    assert signed.original['hmac'] == 'valid'
    assert signed.original['body']['result'] == {'user_id': 'carol'}
    pair.compare('hmac.signed_get_with_query', Call('GET', '/whoami', query=[('x', '1')],
                                                    session='carol', sign=True))
    pair.compare('hmac.signed_batch', Call(json={'batch': {'a': method('whoami'),
                                                           'b': method('echo', x=1)}},
                                           session='carol', sign=True))
    unsigned = pair.compare('hmac.unsigned_call', Call(path='/whoami', json={},
                                                       session='carol'))
    assert unsigned.original['body']['error'] == {'code': 1008, 'value': 'Invalid HMAC'}
    assert unsigned.original['hmac'] == 'valid'
    pair.compare('hmac.wrong_signature', Call(path='/whoami', json={}, session='carol',
                                              sign='bad'))
    pair.compare('hmac.no_session_needed', Call(json=method('echo', x=1)))
    pair.compare('hmac.anonymous_session', Call(json=method('anonymous')), keep='anonymous')
    pair.compare('hmac.logout', Call(json=method('account.logout'), session='carol',
                                     sign=True))
    refused = pair.compare('hmac.after_logout', Call(
        path='/whoami', json={}, session='carol', sign=True))
    assert refused.original['body'] == {'error': {'code': 1004, 'value': 'Not authorized'}}
    assert refused.original['hmac'] is None


def test_hmac_after_the_session_state_was_saved(hmac_pair):
    """1.0.12's json driver drops the session key when it saves the state."""
    pair = hmac_pair
    pair.compare('hmac.create_for_state', Call(json=method(
        'account.create', user_id='Cora', password='pw')), keep='cora')
    counted = pair.compare('hmac.save_state', Call(
        path='/increment', json={}, session='cora', sign=True))
    assert counted.original['body']['result'] == {'count': 1}
    after = pair.compare('hmac.after_state_saved', Call(path='/increment', json={},
                                                        session='cora', sign=True))
    assert after.original['status'] == 500


# -- cookies ---------------------------------------------------------------------------------

def _own_origin(side):
    return 'http://127.0.0.1:%d' % side.port


def test_session_cookies(tmp_path):
    with WebPair(str(tmp_path)) as pair:
        pair.start_app('web_app', conf=app_conf(use_cookies=True, cookie_secret=COOKIE_SECRET))
        login = pair.compare('cookies.login', Call(json=method(
            'account.create', user_id='dan', password='pw')), keep='dan')
        cookie = login.original['cookies']['toto-session-id']
        assert cookie['value'] == '<signed: <kept:dan>>'
        pair.compare('cookies.json_post', Call(path='/whoami', json={}, cookie='dan'))
        pair.compare('cookies.header_wins', Call(path='/whoami', json={}, cookie='dan',
                                                 headers=[('x-toto-session-id', 'A' * 22)]))
        pair.compare('cookies.same_origin_form_post',
                     Call(path='/whoami', form=[('a', '1')], cookie='dan',
                          headers=[('Origin', _own_origin)]))
        pair.compare('cookies.form_post_without_origin',
                     Call(path='/whoami', form=[('a', '1')], cookie='dan'))
        pair.compare('cookies.cross_site_form_post',
                     Call(path='/whoami', form=[('a', '1')], cookie='dan',
                          headers=[('Origin', 'http://evil.example')]))
        pair.compare('cookies.cross_site_multipart_post',
                     Call(path='/whoami', fields=[('a', '1')], cookie='dan',
                          headers=[('Origin', 'http://evil.example')]))
        pair.compare('cookies.cross_site_get',
                     Call('GET', '/whoami', cookie='dan',
                          headers=[('Sec-Fetch-Site', 'cross-site')]))
        pair.compare('cookies.unsigned_value_refused',
                     Call(path='/whoami', json={},
                          headers=[('Cookie', 'toto-session-id=x')]))
        pair.compare('cookies.logout', Call(json=method('account.logout'), cookie='dan'))
        pair.compare('cookies.after_logout', Call(path='/whoami', json={}, cookie='dan'))


def test_session_cookies_with_hmac(tmp_path):
    with WebPair(str(tmp_path)) as pair:
        pair.start_app('web_app', conf=app_conf(use_cookies=True, cookie_secret=COOKIE_SECRET,
                                                hmac_enabled=True))
        pair.compare('cookies_hmac.login', Call(json=method(
            'account.create', user_id='erin', password='pw')), keep='erin')
        pair.compare('cookies_hmac.signed_call', Call(
            path='/whoami', json={}, cookie='erin', session='erin', sign=True))


def test_compatibility_options_restore_1_0_12(tmp_path):
    """This package's options that bring back 1.0.12's behaviour (1.0.12 does not know
    them: its conf file ignores them) give 1.0.12's answers."""
    with WebPair(str(tmp_path)) as pair:
        pair.start_app('web_app', conf=app_conf(
            use_cookies=True, cookie_secret=COOKIE_SECRET, allow_cross_site_cookies=True,
            cookie_httponly=False, cors_allow_headers=['*']))
        pair.compare('compat_options.requested_headers', OPTIONS_CASES[1][1])
        pair.compare('compat_options.login', Call(json=method(
            'account.create', user_id='fay', password='pw')), keep='fay')
        accepted = pair.compare('compat_options.cross_site_form_post', Call(
            path='/whoami', form=[('a', '1')], cookie='fay',
            headers=[('Origin', 'http://evil.example')]))
        assert accepted.other['body']['result'] == {'user_id': 'fay'}
        assert 'httponly' not in accepted.other['cookies']['toto-session-id']


# -- method selection and the root -------------------------------------------------------------

def test_method_select_url_under_a_root(tmp_path):
    with WebPair(str(tmp_path)) as pair:
        pair.start_app('web_app', conf=app_conf(method_select='url', root='/api'))
        pair.compare('root.url_method', Call('GET', '/echo', query=[('x', '1')]))
        pair.compare('root.nested', Call(path='/a/b', json={'parameters': {'x': 1}}))
        pair.compare('root.bare_root', Call(json=method('echo')))
        pair.compare('root.without_slash', Call('GET', uri='/apiecho'))
        pair.compare('root.outside_the_root', Call('GET', uri='/echo'))
        pair.compare('method_select_url.body_method_ignored', Call(json=method('echo')))
        pair.compare('method_select_url.batch', Call(json={'batch': {'k': method('echo')}}))


def test_method_select_parameter(tmp_path):
    with WebPair(str(tmp_path)) as pair:
        pair.start_app('web_app', conf=app_conf(method_select='parameter'))
        pair.compare('method_select_parameter.body', Call(json=method('echo', x=1)))
        pair.compare('method_select_parameter.path_ignored', Call(path='/echo', json={'x': 1}))
        pair.compare('method_select_parameter.get', Call('GET', '/echo'))
        pair.compare('method_select_parameter.batch',
                     Call(json={'batch': {'k': method('echo', x=1)}}))


# -- the templates -------------------------------------------------------------------------------

def test_the_simple_template(tmp_path):
    """``toto-create <path> simple`` on each side, served with the json database."""
    with WebPair(str(tmp_path)) as pair:
        pair.start_template('simple')
        pair.compare('simple.create', Call(json=method(
            'account.create', user_id='gus', password='pw')), keep='gus')
        for count in (1, 2, 3):
            counted = pair.compare('simple.increment', Call(json=method('increment'),
                                                            session='gus'))
            assert counted.original['body']['result'] == {'count': count}
        pair.compare('simple.login', Call(json=method(
            'account.login', user_id='gus', password='pw')), keep='gus')
        counted = pair.compare('simple.increment_after_login',
                               Call(json=method('increment'), session='gus'))
        assert counted.original['body']['result'] == {'count': 1}
        pair.compare('simple.client_error', Call(json=method(
            'client_error', client_error='oops', client_type='browser_js')))
        pair.compare('simple.logout', Call(json=method('account.logout'), session='gus'))
        pair.compare('simple.after_logout', Call(json=method('increment'), session='gus'))


def test_the_chat_template_across_two_processes(tmp_path):
    """Long polls on both processes of each side are answered by one posted message."""
    with WebPair(str(tmp_path)) as pair:
        pair.start_template('chat', processes=2, events=True)
        receivers = [Call(json=method('receive_message'), timeout=30.0),
                     Call(path='/receive_message', json={}, timeout=30.0)] * 2
        answers = dict((side.role, _long_polls(side, receivers)) for side in pair.sides)
        for index, call in enumerate(receivers):
            comparison = oracle_web.check(oracle_web.WebComparison(
                'chat.receive_message', call,
                dict((role, answers[role][index]) for role in answers),
                dict((side.role, oracle_web.answer_aspects(answers[side.role][index], side))
                     for side in pair.sides)), pair.strict)
            assert comparison.original['body'] == {'result': {'message': 'hello, chat'}}
        pair.compare('chat.post_message', Call(json=method('post_message',
                                                           message='hello, chat')))
        pair.compare('chat.post_without_message', Call(json=method('post_message')))


def _long_polls(side, calls, deadline=20.0):
    """Start ``calls`` at once on ``side``; post messages until every one is answered."""
    import threading
    answers = [None] * len(calls)

    def receive(index, call):
        answers[index] = side.send(call)
    threads = [threading.Thread(target=receive, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    post = Call(json=method('post_message', message='hello, chat'))
    give_up = time.time() + deadline
    # A message reaches only the long polls already waiting: post until none is left.
    while any(thread.is_alive() for thread in threads) and time.time() < give_up:
        side.send(post)
        for thread in threads:
            thread.join(0.2)
    for thread in threads:
        thread.join(max(0.0, give_up - time.time()))
    if any(answer is None for answer in answers):
        raise AssertionError('%s: long polls unanswered after %.0f s\n%s'
                             % (side.title, deadline, side.describe()))
    return answers
