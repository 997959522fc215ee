# -*- coding: utf-8 -*-
"""The built-in methods (toto.methods): account.create/login/logout/update and client_error.

The methods run here on :class:`SessionHandler`, which does what TotoHandler does for a method
(``create_session``, ``retrieve_session`` from the ``x-toto-session-id`` header, the HMAC key
under ``hmac_enabled``), over a real JSON database connection.
"""

from __future__ import absolute_import, division, print_function

import hmac
import json
import logging
import time
from base64 import b64encode
from collections import OrderedDict
from hashlib import sha1

import pytest
import six

import websupport
from dbsupport import cheap_password_hashes  # noqa: F401 - autouse
from toto.exceptions import (ERROR_INVALID_HMAC, ERROR_INVALID_USER_ID, ERROR_MISSING_PARAMS,
                             ERROR_NOT_AUTHORIZED, ERROR_USER_ID_EXISTS, ERROR_USER_NOT_FOUND,
                             TotoException)
from toto.jsondbconnection import JSONConnection
from toto.session import TotoSession
from websupport import ROOT


class SessionHandler(object):
    """The session face of a TotoHandler for one request (see the module docstring)."""

    def __init__(self, db_connection, session_id=None, hmac_enabled=False):
        self.db_connection = db_connection
        self.session = None
        self.session_id = session_id
        self.hmac_enabled = hmac_enabled

    def create_session(self, user_id=None, password=None, verify_password=True):
        key = self.hmac_enabled and TotoSession.generate_id()
        self.session = self.db_connection.create_session(user_id, password, verify_password,
                                                         key=key)
        return self.session

    def retrieve_session(self, session_id=None):
        if not self.session or (session_id and self.session.session_id != session_id):
            self.session = self.db_connection.retrieve_session(session_id or self.session_id)
        return self.session


@pytest.fixture
def db():
    return JSONConnection(session_ttl=3600)


def call(method, db, parameters, session_id=None, hmac_enabled=False):
    handler = SessionHandler(db, session_id, hmac_enabled)
    return method.invoke(handler, dict(parameters)), handler


def error_of(method, db, parameters, session_id=None):
    with pytest.raises(TotoException) as caught:
        call(method, db, parameters, session_id)
    return caught.value.code, caught.value.value


# -- imports as applications write them -----------------------------------------------------

def test_the_methods_import_as_1_0_12_applications_import_them():
    import toto.methods
    import toto.methods.account.login as login
    from toto.methods.account import create, logout, update
    assert toto.methods.account.login is login
    assert toto.methods.account.create is create
    assert (toto.methods.account.logout, toto.methods.account.update) == (logout, update)
    import toto.methods.client_error as client_error
    assert toto.methods.client_error is client_error
    for module in (login, create, logout, update, client_error):
        assert callable(module.invoke)


# -- account.create -------------------------------------------------------------------------

def test_create_stores_the_account_and_answers_as_login(db):
    from toto.methods.account import create
    answer, handler = call(create, db, {'user_id': 'Alice', 'password': 'secret',
                                        'team': 'blue'})
    assert sorted(answer) == ['expires', 'session_id', 'user_id']
    assert answer['user_id'] == 'alice'
    assert answer['session_id'] == handler.session.session_id
    assert abs(answer['expires'] - (time.time() + 3600)) < 60
    stored = db.get('account', 'alice')
    assert stored['team'] == 'blue' and stored['user_id'] == 'alice'
    assert stored['password'].startswith('$p5k2$') and 'secret' not in stored['password']
    assert db.retrieve_session(answer['session_id']).user_id == 'alice'


def test_create_answers_the_hmac_key_when_hmac_is_enabled(db):
    from toto.methods.account import create
    answer, handler = call(create, db, {'user_id': 'carol', 'password': 'pw'},
                           hmac_enabled=True)
    assert answer['key'] == handler.session.key and len(answer['key']) == 22


def test_create_refuses_a_taken_id_and_missing_parameters(db):
    from toto.methods.account import create
    call(create, db, {'user_id': 'alice', 'password': 'secret'})
    assert error_of(create, db, {'user_id': 'ALICE', 'password': 'x'}) == (
        ERROR_USER_ID_EXISTS, 'User ID already in use.')
    assert error_of(create, db, {'user_id': 'bob'}) == (
        ERROR_MISSING_PARAMS, 'Missing parameters: password')
    assert error_of(create, db, {}) == (
        ERROR_MISSING_PARAMS, 'Missing parameters: password, user_id')


def test_create_never_takes_the_drivers_own_fields_from_the_client(db):
    from toto.methods.account import create
    call(create, db, {'user_id': 'mallory', 'password': 'pw', 'account_id': 1,
                      'properties': {'is_admin': True}, 'nickname': 'm'})
    stored = db.get('account', 'mallory')
    assert 'account_id' not in stored and 'properties' not in stored
    assert stored['nickname'] == 'm'


def test_applications_can_name_the_fields_a_client_may_set(db, monkeypatch):
    from toto.methods.account import create
    monkeypatch.setattr(create, 'account_fields', ('nickname',))
    call(create, db, {'user_id': 'dave', 'password': 'pw', 'nickname': 'd', 'is_admin': True})
    stored = db.get('account', 'dave')
    assert stored['nickname'] == 'd' and 'is_admin' not in stored
    assert stored['user_id'] == 'dave' and stored['password'].startswith('$p5k2$')


# -- account.login --------------------------------------------------------------------------

def test_login_answers_the_session_and_lowercases_the_id(db):
    from toto.methods.account import login
    db.create_account('alice', 'secret')
    answer, handler = call(login, db, {'user_id': 'ALICE', 'password': 'secret'})
    assert answer == {'session_id': handler.session.session_id, 'user_id': 'alice',
                      'expires': handler.session.expires}
    keyed, handler = call(login, db, {'user_id': 'alice', 'password': 'secret'},
                          hmac_enabled=True)
    assert keyed['key'] == handler.session.key


def test_login_refuses_wrong_credentials_with_1005(db):
    from toto.methods.account import login
    db.create_account('alice', 'secret')
    expected = (ERROR_USER_NOT_FOUND, 'Invalid user ID or password')
    assert error_of(login, db, {'user_id': 'alice', 'password': 'wrong'}) == expected
    assert error_of(login, db, {'user_id': 'nobody', 'password': 'secret'}) == expected
    assert error_of(login, db, {'user_id': 'alice'})[0] == ERROR_MISSING_PARAMS


# -- account.logout -------------------------------------------------------------------------

def test_logout_ends_the_session(db):
    from toto.methods.account import logout
    db.create_account('alice', 'secret')
    session_id = db.create_session('alice', 'secret').session_id
    answer, _ = call(logout, db, {}, session_id)
    assert answer == {'authenticated': False}
    assert db.retrieve_session(session_id) is None
    assert error_of(logout, db, {}, session_id) == (ERROR_NOT_AUTHORIZED, 'Not authorized')


def test_logout_needs_a_logged_in_session(db):
    from toto.methods.account import logout
    anonymous = db.create_session().session_id
    assert error_of(logout, db, {}, anonymous)[0] == ERROR_NOT_AUTHORIZED
    assert error_of(logout, db, {})[0] == ERROR_NOT_AUTHORIZED


# -- account.update -------------------------------------------------------------------------

@pytest.fixture
def alice(db):
    db.create_account('alice', 'secret')
    return db.create_session('alice', 'secret').session_id


def test_update_stores_properties_and_lists_them(db, alice):
    from toto.methods.account import update
    answer, handler = call(update, db, {'password': 'secret', 'colour': 'red', 'size': 3},
                           alice)
    assert sorted(answer['updated_fields']) == ['colour', 'size']
    assert set(answer) == set(['updated_fields'])
    account = db.retrieve_session(alice).get_account()
    assert (account['colour'], account['size']) == ('red', 3)


def test_update_without_password_is_a_clean_missing_parameter(db, alice):
    from toto.methods.account import update
    assert error_of(update, db, {'colour': 'red'}, alice) == (
        ERROR_MISSING_PARAMS, 'Missing parameters: password')
    assert error_of(update, db, {'colour': 'red'})[0] == ERROR_NOT_AUTHORIZED


def test_update_with_new_password_changes_it_and_logs_in_again(db, alice):
    from toto.methods.account import login, update
    answer, handler = call(update, db, {'password': 'secret', 'new_password': 'better',
                                        'user_id': 'Alice', 'nickname': 'al'}, alice)
    assert sorted(answer['updated_fields']) == ['nickname', 'password']
    assert answer['session_id'] == handler.session.session_id != alice
    assert answer['user_id'] == 'alice'
    assert error_of(login, db, {'user_id': 'alice', 'password': 'secret'})[0] == \
        ERROR_USER_NOT_FOUND
    assert call(login, db, {'user_id': 'alice', 'password': 'better'})[0]['user_id'] == 'alice'
    assert db.retrieve_session(answer['session_id']).get_account()['nickname'] == 'al'
    # user_id names the account; it is never stored as a property.
    assert 'user_id' not in db.get('account', 'alice', 'properties')


def test_update_with_a_wrong_password_changes_nothing(db, alice):
    from toto.methods.account import update
    assert error_of(update, db, {'password': 'wrong', 'new_password': 'x', 'nickname': 'n'},
                    alice) == (ERROR_USER_NOT_FOUND, 'Invalid user ID or password')
    assert db.create_session('alice', 'secret').user_id == 'alice'
    assert not db.get('account', 'alice', 'properties')


def test_update_refuses_to_touch_another_account(db, alice):
    from toto.methods.account import update
    db.create_account('bob', 'bobs')
    assert error_of(update, db, {'password': 'bobs', 'new_password': 'x', 'user_id': 'bob'},
                    alice) == (ERROR_NOT_AUTHORIZED, 'Not authorized')
    assert db.create_session('bob', 'bobs').user_id == 'bob'


# -- client_error ---------------------------------------------------------------------------

def test_client_error_logs_browser_errors_only(db, caplog):
    from toto.methods import client_error
    with caplog.at_level(logging.ERROR, logger='toto.methods.client_error'):
        answer, _ = call(client_error, db, {'client_error': 'oops\nFAKE LINE',
                                            'client_type': 'browser_js'})
        assert answer == {'logged': True}
        assert call(client_error, db, {'client_error': 'no', 'client_type': 'ios'})[0] == {
            'logged': False}
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ['client error: oops\\nFAKE LINE']
    assert error_of(client_error, db, {'client_error': 'x'}) == (
        ERROR_MISSING_PARAMS, 'Missing parameters: client_type')


def test_client_error_cuts_long_text(db, caplog):
    from toto.methods import client_error
    with caplog.at_level(logging.ERROR, logger='toto.methods.client_error'):
        call(client_error, db, {'client_error': u'é' * 10000, 'client_type': 'browser_js'})
    message = caplog.records[-1].getMessage()
    assert len(message) < 4200 and message.endswith('(10000 characters)')


# -- through a real TotoHandler and HTTP server ---------------------------------------------
#
# The method package is toto.methods itself: account.login is toto.methods.account.login.

@pytest.fixture
def web_db(tmp_path):
    return websupport.json_connection(str(tmp_path), session_ttl=3600)


def serve(db_connection, **option_values):
    option_values.setdefault('method_module', 'toto.methods')
    return websupport.WebServer(db_connection=db_connection, **option_values)


def signed_post(server, method, parameters, session):
    """POST signed as 1.0.12 clients sign: base64(HMAC-SHA1(key, 'POST' + uri + body))."""
    body = websupport.json_body({'method': method, 'parameters': parameters})
    headers = {'x-toto-session-id': session['session_id']}
    if session.get('key'):
        digest = hmac.new(session['key'].encode('ascii'), b'POST' + ROOT.encode('ascii') + body,
                          sha1).digest()
        headers['x-toto-hmac'] = b64encode(digest).decode('ascii')
    return server.post(ROOT, raw=body, content_type='application/json', headers=headers)


def answer_signature_is_valid(response, key):
    session_id = response.json['session']['session_id']
    digest = hmac.new(key.encode('ascii'), session_id.encode('ascii') + response.body,
                      sha1).digest()
    return response.header('x-toto-hmac') == b64encode(digest).decode('ascii')


def test_an_account_over_http_create_update_logout(web_db):
    with serve(web_db) as server:
        created = server.call('account.create', {'user_id': 'Alice', 'password': 'secret'})
        result = created.json['result']
        assert result['user_id'] == 'alice' and 'key' not in result
        assert created.json['session']['session_id'] == result['session_id']
        session = {'session_id': result['session_id']}

        refused = signed_post(server, 'account.update', {'colour': 'red'}, session)
        assert refused.status == 200
        assert refused.json['error'] == {'code': ERROR_MISSING_PARAMS,
                                         'value': 'Missing parameters: password'}
        updated = signed_post(server, 'account.update', {'password': 'secret', 'colour': 'red'},
                              session)
        assert updated.json['result'] == {'updated_fields': ['colour']}

        taken = server.call('account.create', {'user_id': 'ALICE', 'password': 'x'})
        assert taken.json['error']['code'] == ERROR_USER_ID_EXISTS
        assert signed_post(server, 'account.logout', {}, session).json['result'] == {
            'authenticated': False}
        after = signed_post(server, 'account.update', {'password': 'secret'}, session)
        assert after.json['error'] == {'code': ERROR_NOT_AUTHORIZED, 'value': 'Not authorized'}


def test_login_hands_out_the_hmac_key_and_requests_are_signed_with_it(web_db):
    web_db.create_account('carol', 'pw')
    with serve(web_db, hmac_enabled=True) as server:
        login_answer = server.call('account.login', {'user_id': 'CAROL', 'password': 'pw'})
        result = login_answer.json['result']
        assert len(result['key']) == 22
        # On Python 3, the keys in the order 1.0.12 wrote them (without hash randomization:
        # on Python 2 the order is the dict's, as it was).
        in_order = json.loads(login_answer.text, object_pairs_hook=OrderedDict)['result']
        if six.PY3:
            assert list(in_order) == ['expires', 'user_id', 'key', 'session_id']
        assert answer_signature_is_valid(login_answer, result['key'])
        session = {'session_id': result['session_id'], 'key': result['key']}

        updated = signed_post(server, 'account.update',
                              {'password': 'pw', 'new_password': 'pw2'}, session)
        renewed = updated.json['result']
        assert renewed['updated_fields'] == ['password']
        assert renewed['session_id'] != session['session_id'] and len(renewed['key']) == 22
        assert updated.json['session']['session_id'] == renewed['session_id']
        assert answer_signature_is_valid(updated, renewed['key'])

        unsigned = signed_post(server, 'account.logout', {},
                               {'session_id': renewed['session_id']})
        assert unsigned.json['error']['code'] == ERROR_INVALID_HMAC
        logged_out = signed_post(server, 'account.logout', {},
                                 {'session_id': renewed['session_id'], 'key': renewed['key']})
        assert logged_out.json['result'] == {'authenticated': False}
        again = server.call('account.login', {'user_id': 'carol', 'password': 'pw2'})
        assert again.json['result']['user_id'] == 'carol'


def test_client_error_over_http(web_db):
    with serve(web_db) as server:
        answer = server.call('client_error', {'client_error': 'TypeError: x is undefined',
                                              'client_type': 'browser_js'})
        assert answer.json == {'result': {'logged': True}}


def test_sessions_kept_in_client_ids_through_the_handler(web_db):
    from toto.clientsessioncache import AESCipher, ClientCache
    try:
        cipher = AESCipher(b'k' * 16 + b'i' * 16)
    except ImportError as error:
        pytest.skip(str(error))
    web_db.set_session_cache(ClientCache(cipher, b'h' * 32))
    with serve(web_db, hmac_enabled=True) as server:
        created = server.call('account.create', {'user_id': 'erin', 'password': 'pw'}).json
        session = {'session_id': created['result']['session_id'],
                   'key': created['result']['key']}
        assert len(session['session_id']) > 100
        updated = signed_post(server, 'account.update', {'password': 'pw', 'nick': 'e'},
                              session)
        assert updated.json['result'] == {'updated_fields': ['nick']}
        # Each lookup renews the session, which gives it a new id; the old one still works.
        renewed_id = updated.json['session']['session_id']
        assert renewed_id != session['session_id']
        assert answer_signature_is_valid(updated, session['key'])
        forged = dict(session, session_id=session['session_id'][:-8] + 'AAAAAAA=')
        refused = signed_post(server, 'account.logout', {}, forged)
        assert refused.json['error'] == {'code': -1, 'value': 'Invalid session HMAC'}


def test_a_user_id_that_is_not_text_names_no_account_over_http(web_db):
    web_db.create_account('alice', 'secret')
    with serve(web_db) as server:
        for user_id in ({'$ne': ''}, ['alice'], 7):
            login = server.call('account.login', {'user_id': user_id, 'password': 'secret'})
            assert login.json['error'] == {'code': ERROR_USER_NOT_FOUND,
                                           'value': 'Invalid user ID or password'}
            create = server.call('account.create', {'user_id': user_id, 'password': 'x'})
            assert create.json['error'] == {'code': ERROR_INVALID_USER_ID,
                                            'value': 'Invalid user ID.'}
