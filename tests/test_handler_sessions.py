"""Sessions on a real TotoHandler: every session decorator with the none and json drivers,
request and response HMACs, the session cookie and refusing cross-site cookie requests."""

import base64
import hashlib
import hmac
import json
import sys
import time

import pytest
import six

from dbsupport import DictSessionCache, cheap_password_hashes  # noqa: F401 - autouse
from websupport import TemporaryDirectory, WebServer, json_body, json_connection

ERROR_SERVER = 1000
ERROR_MISSING_PARAMS = 1003
ERROR_NOT_AUTHORIZED = 1004
ERROR_USER_NOT_FOUND = 1005
ERROR_INVALID_HMAC = 1008
COOKIE_SECRET = 'test cookie secret'


def sign(key, data):
    if isinstance(data, six.text_type):
        data = data.encode('utf-8')
    return base64.b64encode(hmac.new(key.encode('ascii'), data, hashlib.sha1).digest()).decode(
        'ascii')


@pytest.fixture
def store():
    with TemporaryDirectory() as directory:
        yield json_connection(directory)


def signup(server, user_id='Alice', password='secret', headers=None):
    answer = server.call('signup', {'user_id': user_id, 'password': password}, headers=headers)
    assert 'result' in answer.json, answer.json
    return answer


def session_header(answer):
    return {'x-toto-session-id': answer.json['result']['session_id']}


# -- the none driver --------------------------------------------------------------------------

def test_without_a_database_anonymous_sessions_need_a_session_cache():
    with WebServer(database='none') as server:
        answer = server.call('anon')
        assert answer.json['error']['code'] == ERROR_SERVER
        assert 'session cache' in answer.json['error']['value']
        assert server.call('authed').json['error'] == {'code': ERROR_NOT_AUTHORIZED,
                                                       'value': 'Not authorized'}


def test_without_a_database_a_session_cache_keeps_anonymous_sessions():
    from toto.fakeconnection import FakeConnection
    connection = FakeConnection()
    connection.set_session_cache(DictSessionCache())
    with WebServer(db_connection=connection) as server:
        first = server.call('anon').json
        assert first['result']['user_id'] == ''
        assert first['session']['user_id'] == ''
        again = server.call('anon', headers={'x-toto-session-id': first['session']['session_id']})
        assert again.json['result']['session_id'] == first['session']['session_id']


# -- the json driver ------------------------------------------------------------------------------

# On Python 2 the answers are plain dicts, as 1.0.12's were: their order is 1.0.12's
# when the interpreter hashes as it does by default, and as random as 1.0.12's under a
# random PYTHONHASHSEED (tox sets one).
PYTHON2_RANDOM_ORDER = sys.version_info[0] == 2 and bool(sys.flags.hash_randomization)


def test_a_session_answer_has_the_session_first_in_1_0_12s_key_order(store):
    with WebServer(db_connection=store) as server:
        answer = signup(server)
        session = answer.json['session']
        if PYTHON2_RANDOM_ORDER:
            assert sorted(session) == ['expires', 'session_id', 'user_id']
            return
        assert answer.body.startswith(b'{"session": {"expires": ')
        assert list(json.loads(answer.body.decode('ascii'))) in (['session', 'result'],
                                                                  ['result', 'session'])
        assert session['user_id'] == 'alice'
        assert len(session['session_id']) == 22
        assert abs(session['expires'] - (time.time() + 31536000)) < 60
        assert b'"user_id": "alice", "session_id": ' in answer.body
        assert answer.json['result'] == session


def test_authenticated_methods_use_the_header_session_and_its_state(store):
    with WebServer(db_connection=store) as server:
        headers = session_header(signup(server))
        assert server.call('authed', headers=headers).json['result'] == {'user_id': 'alice',
                                                                         'count': 1}
        assert server.call('authed', headers=headers).json['result']['count'] == 2
        assert server.call('optional', headers=headers).json['result'] == {'signed_in': True}


def test_no_or_an_unknown_session_is_not_authorized(store):
    with WebServer(db_connection=store) as server:
        assert server.call('authed').json['error']['code'] == ERROR_NOT_AUTHORIZED
        unknown = {'x-toto-session-id': 'A' * 22}
        assert server.call('authed', headers=unknown).json['error']['code'] == \
            ERROR_NOT_AUTHORIZED
        assert server.call('optional', headers=unknown).json == {
            'result': {'signed_in': False}}


def test_the_session_id_may_be_a_parameter(store):
    with WebServer(db_connection=store) as server:
        session_id = signup(server).json['result']['session_id']
        answer = server.call('with_param', {'session_id': session_id, 'x': 1})
        assert answer.json['result'] == {'user_id': 'alice', 'parameters': {'x': 1}}
        assert server.call('with_param', {'x': 1}).json['error']['code'] == \
            ERROR_NOT_AUTHORIZED


def test_anonymous_sessions_have_an_empty_user_id(store):
    with WebServer(db_connection=store) as server:
        answer = server.call('anon').json
        assert answer['result']['user_id'] == '' and answer['session']['user_id'] == ''


def test_signing_out_ends_the_session(store):
    with WebServer(db_connection=store) as server:
        headers = session_header(signup(server))
        assert server.call('signout', headers=headers).json['result'] == {'authenticated': False}
        assert server.call('authed', headers=headers).json['error']['code'] == \
            ERROR_NOT_AUTHORIZED


def test_a_wrong_password_is_error_1005(store):
    with WebServer(db_connection=store) as server:
        signup(server)
        answer = server.call('signin', {'user_id': 'alice', 'password': 'wrong'})
        assert answer.json['error'] == {'code': ERROR_USER_NOT_FOUND,
                                        'value': 'Invalid user ID or password'}


def test_requires_and_default_parameters(store):
    with WebServer(db_connection=store) as server:
        assert server.call('needs', {'other': 1}).json['error'] == {
            'code': ERROR_MISSING_PARAMS, 'value': 'Missing parameters: password, user_id'}
        assert server.call('defaults', {'b': 3}).json['result'] == {'a': 1, 'b': 3}


def test_non_ascii_user_ids_are_answered_as_text(store):
    # 1.0.12 answered an HTML 500 (str() of the id).
    with WebServer(db_connection=store) as server:
        answer = signup(server, user_id=u'Zo\xeb')
        assert answer.status == 200
        assert answer.json['session']['user_id'] == u'zo\xeb'
        assert b'"user_id": "zo\\u00eb"' in answer.body
        assert server.call('authed', headers=session_header(answer)).json['result'][
            'user_id'] == u'zo\xeb'


# -- HMAC ---------------------------------------------------------------------------------------

def signed_call(server, key, session_id, method, parameters=None, path='/api', mac=None):
    body = json_body({'method': method, 'parameters': parameters or {}})
    headers = {'Content-Type': 'application/json', 'x-toto-session-id': session_id,
               'x-toto-hmac': mac if mac is not None else sign(key, b'POST' + path.encode(
                   'ascii') + body)}
    return server.request('POST', path, body, headers)


def test_hmac_sessions_get_a_key_and_signed_requests_pass(store):
    with WebServer(db_connection=store, hmac_enabled=True) as server:
        result = signup(server).json['result']
        key, session_id = result['key'], result['session_id']
        assert len(key) == 22
        answer = signed_call(server, key, session_id, 'authed')
        assert answer.json['result'] == {'user_id': 'alice', 'count': 1}
        assert answer.header('X-Toto-Hmac') == sign(key, session_id.encode('ascii') + answer.body)


def test_the_request_signature_covers_the_query(store):
    with WebServer(db_connection=store, hmac_enabled=True) as server:
        result = signup(server).json['result']
        path = '/api/authed?x=1&y=%C3%A9'
        headers = {'x-toto-session-id': result['session_id'],
                   'x-toto-hmac': sign(result['key'], b'GET' + path.encode('ascii'))}
        assert server.get(path, headers=headers).json['result']['count'] == 1
        headers['x-toto-hmac'] = sign(result['key'], b'GET/api/authed')
        assert server.get(path, headers=headers).json['error']['code'] == ERROR_INVALID_HMAC


@pytest.mark.parametrize('mac', ['', 'not a mac', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='])
def test_a_missing_or_wrong_hmac_is_error_1008_with_a_signed_session(store, mac):
    with WebServer(db_connection=store, hmac_enabled=True) as server:
        result = signup(server).json['result']
        answer = signed_call(server, result['key'], result['session_id'], 'authed', mac=mac)
        assert answer.json['error'] == {'code': ERROR_INVALID_HMAC, 'value': 'Invalid HMAC'}
        # As in 1.0.12, the session stays loaded: the answer carries it, signed.
        assert answer.json['session']['session_id'] == result['session_id']
        assert answer.header('X-Toto-Hmac') == sign(
            result['key'], result['session_id'].encode('ascii') + answer.body)


def test_custom_hmac_handlers_are_called_with_the_handler_first(store):
    seen = []

    def verify(handler, session, request, headers):
        seen.append((type(handler).__name__, session.user_id, request.method,
                     headers.get('x-custom')))
        if headers.get('x-custom') != 'ok':
            raise Exception('custom check failed')

    def response_hmac(handler, session, body):
        return 'signed:%d' % len(body)

    hooks = {'set_hmac_handler': verify, 'set_response_hmac_handler': response_hmac}
    with WebServer(db_connection=store, hmac_enabled=True, hooks=hooks) as server:
        headers = session_header(signup(server))
        answer = server.call('authed', headers=dict(headers, **{'x-custom': 'ok'}))
        assert answer.json['result']['count'] == 1
        assert answer.header('X-Toto-Hmac') == 'signed:%d' % len(answer.body)
        refused = server.call('authed', headers=headers)
        assert refused.json['error'] == {'code': ERROR_SERVER, 'value': 'custom check failed'}
    assert seen[0][1:] == ('alice', 'POST', 'ok')


# -- cookies -------------------------------------------------------------------------------------

def cookie_server(store, **options):
    options.setdefault('use_cookies', True)
    settings = {'cookie_secret': COOKIE_SECRET}
    return WebServer(db_connection=store, settings=settings, **options)


def session_cookie(answer):
    for value in answer.header_values('Set-Cookie'):
        if value.startswith('toto-session-id='):
            return value
    return None


def cookie_header(answer):
    return {'Cookie': session_cookie(answer).split(';')[0]}


def test_the_session_cookie_is_signed_httponly_and_expires_with_the_session(store):
    with cookie_server(store) as server:
        answer = signup(server)
        cookie = session_cookie(answer)
        value = cookie.split(';')[0].split('=', 1)[1].strip('"')
        assert value.startswith('2|')  # tornado's signed value, version 2
        attributes = [part.strip().lower() for part in cookie.split(';')[1:]]
        assert 'httponly' in attributes and 'path=/' in attributes
        assert not any(part.startswith('secure') for part in attributes)
        expires = [part for part in attributes if part.startswith('expires=')][0]
        year = int(expires.split()[3])
        # 1.0.12 read the expiry time as a count of days: about 58 years ahead.
        assert year <= time.gmtime(answer.json['session']['expires']).tm_year


def test_the_cookie_alone_carries_the_session(store):
    with cookie_server(store) as server:
        cookie = cookie_header(signup(server))
        assert server.call('authed', headers=cookie).json['result'] == {'user_id': 'alice',
                                                                        'count': 1}
        # The cookie is sent again whenever the session is loaded.
        assert session_cookie(server.call('authed', headers=cookie))


def test_the_header_wins_over_the_cookie(store):
    with cookie_server(store) as server:
        cookie = cookie_header(signup(server))
        bob = signup(server, user_id='bob')
        headers = dict(cookie, **session_header(bob))
        assert server.call('authed', headers=headers).json['result']['user_id'] == 'bob'


def test_unsigned_cookies_domain_and_no_httponly_on_request(store):
    with cookie_server(store, secure_cookies=False, cookie_domain='example.test',
                       cookie_httponly=False) as server:
        answer = signup(server)
        cookie = session_cookie(answer)
        assert cookie.startswith('toto-session-id=%s;' % answer.json['result']['session_id'])
        assert 'domain=example.test' in cookie.lower()
        assert 'httponly' not in cookie.lower()


def test_the_cookie_is_secure_over_https(store):
    with cookie_server(store, server_settings={'xheaders': True}) as server:
        cookie = session_cookie(signup(server, headers={'X-Scheme': 'https'}))
        assert 'secure' in [part.strip().lower() for part in cookie.split(';')]


def test_cookies_and_hmac_work_together(store):
    # 1.0.12's cookie create_session gave the session no key: every request failed.
    with cookie_server(store, hmac_enabled=True) as server:
        answer = signup(server)
        key = answer.json['result']['key']
        body = json_body({'method': 'authed', 'parameters': {}})
        headers = dict(cookie_header(answer), **{'x-toto-hmac': sign(key, b'POST/api' + body)})
        assert server.request('POST', '/api', body, headers).json['result']['count'] == 1


def test_a_bad_cookie_signature_is_no_session(store):
    with cookie_server(store) as server:
        signup(server)
        forged = {'Cookie': 'toto-session-id="2|1:0|10:1|15:toto-session-id|4:QUFB|00"'}
        assert server.call('authed', headers=forged).json['error']['code'] == \
            ERROR_NOT_AUTHORIZED


# -- cross-site requests -------------------------------------------------------------------------

@pytest.mark.parametrize('headers', [
    {'Origin': 'http://evil.example'},
    {'Origin': 'null'},
    {'Sec-Fetch-Site': 'cross-site', 'Origin': 'http://evil.example'},
    {'Sec-Fetch-Site': 'same-site', 'Origin': 'http://sub.127.0.0.1'},
    {'Referer': 'http://evil.example/page.html'},
])
def test_a_cross_site_request_with_the_cookie_is_refused(store, headers):
    with cookie_server(store) as server:
        cookie = cookie_header(signup(server))
        answer = server.call('authed', headers=dict(cookie, **headers))
        assert answer.status == 403
        assert answer.json['error']['code'] == ERROR_NOT_AUTHORIZED
        assert 'Cross-site' in answer.json['error']['value']
        # The method did not run: the next own-site call is the first.
        assert server.call('authed', headers=cookie).json['result']['count'] == 1


def test_a_cross_site_form_post_with_the_cookie_is_refused(store):
    with cookie_server(store) as server:
        cookie = cookie_header(signup(server))
        headers = dict(cookie, Origin='http://evil.example')
        answer = server.post('/api/authed', raw=b'x=1', headers=headers,
                             content_type='application/x-www-form-urlencoded')
        assert answer.status == 403
        anonymous = server.get('/api/anon', headers=dict(cookie, Referer='http://evil.example/'))
        assert anonymous.status == 403
        assert session_cookie(anonymous) is None  # no new session replaced the cookie


@pytest.mark.parametrize('headers', [
    {},
    {'Sec-Fetch-Site': 'same-origin'},
    {'Sec-Fetch-Site': 'none'},
    {'Origin': 'http://127.0.0.1:{port}'},
    {'Referer': 'http://127.0.0.1:{port}/app/index.html'},
])
def test_own_site_requests_with_the_cookie_pass(store, headers):
    with cookie_server(store) as server:
        cookie = cookie_header(signup(server))
        headers = dict((name, value.format(port=server.port)) for name, value in headers.items())
        assert server.call('authed', headers=dict(cookie, **headers)).json['result'][
            'count'] == 1


def test_header_sessions_are_never_refused_as_cross_site(store):
    with cookie_server(store) as server:
        headers = dict(session_header(signup(server)), Origin='http://evil.example')
        assert server.call('authed', headers=headers).json['result']['count'] == 1


def test_trusted_origins_and_the_option_restoring_1_0_12(store):
    with cookie_server(store, allow_origin='https://app.example') as server:
        cookie = cookie_header(signup(server))
        headers = dict(cookie, Origin='https://app.example', **{'Sec-Fetch-Site': 'cross-site'})
        assert server.call('authed', headers=headers).json['result']['count'] == 1
    with cookie_server(store, allow_cross_site_cookies=True) as server:
        cookie = cookie_header(signup(server, user_id='carol'))
        headers = dict(cookie, Origin='http://evil.example')
        assert server.call('authed', headers=headers).json['result']['count'] == 1
