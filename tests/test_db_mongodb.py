# -*- coding: utf-8 -*-
"""MongoDBConnection against SecantusDB (a MongoDB wire server standing in for mongod).

Accounts, sessions, the stored layout of Toto 1.0.12 both ways, indexes, hostile rows, and a
server that stops and comes back.
"""

from __future__ import absolute_import, division, print_function

import re
import sys
import time

import pytest
import six
from tornado.options import options

import toto.secret
from dbsupport import DictSessionCache, cheap_password_hashes  # noqa: F401 -- autouse
from mongosupport import CLIENT_TIMEOUTS, require_pymongo
from mongosupport import database_name_fixture, raw_db_fixture  # noqa: F401
from toto.dbconnection import DatabaseUnavailable
from toto.exceptions import (ERROR_INVALID_SESSION_ID, ERROR_INVALID_USER_ID, ERROR_SERVER,
                             ERROR_USER_ID_EXISTS, ERROR_USER_NOT_FOUND, TotoException)
from toto.session import TotoSession

pymongo = require_pymongo()

from pymongo.database import Database  # noqa: E402

from toto import mongodbconnection  # noqa: E402
from toto.mongodbconnection import MongoDBConnection, MongoDBSession  # noqa: E402

# Toto 1.0.12 on Python 2 wrote state with cPickle.dumps(state) (protocol 0).
PY2_STATE_PICKLE = "(dp1\nS'visits'\np2\nI3\nsS'name'\np3\nVal\np4\ns."


@pytest.fixture
def connect(mongodb_server, database_name):
    """connect(**kwargs) -> a MongoDBConnection on the test's database (closed afterwards)."""
    made = []

    def connect(**kwargs):
        settings = dict(CLIENT_TIMEOUTS)
        settings.update(kwargs)
        connection = MongoDBConnection('127.0.0.1', mongodb_server.port, database_name,
                                       **settings)
        made.append(connection)
        return connection

    yield connect
    for connection in made:
        connection.close()


def error_code(call, *args, **kwargs):
    with pytest.raises(TotoException) as caught:
        call(*args, **kwargs)
    return caught.value.code


# -- accounts ----------------------------------------------------------------------------

def test_accounts_are_stored_as_1_0_12_did_with_new_ids_lowercased(connect, raw_db):
    connection = connect()
    connection.create_account('Alice', 'secret', color='red', additional_values={'age': 30})
    document = raw_db.accounts.find_one()
    password = document.pop('password')
    document.pop('_id')
    assert document == {'user_id': 'alice', 'color': 'red', 'age': 30}
    assert password.startswith('$p5k2$') and toto.secret.verify_password('secret', password)


def test_account_id_errors(connect):
    connection = connect()
    connection.create_account('alice', 'secret')
    assert error_code(connection.create_account, 'ALICE', 'x') == ERROR_USER_ID_EXISTS
    assert error_code(connection.create_account, '', 'x') == ERROR_INVALID_USER_ID
    # A query document is not a user id (it would match any account).
    assert error_code(connection.create_account, {'$ne': ''}, 'x') == ERROR_INVALID_USER_ID


def test_login_checks_the_password_and_ignores_case_of_new_accounts(connect):
    connection = connect()
    connection.create_account('alice', 'secret')
    assert connection.create_session('ALICE', 'secret').user_id == 'alice'
    assert error_code(connection.create_session, 'alice', 'wrong') == ERROR_USER_NOT_FOUND
    assert error_code(connection.create_session, 'alice', None) == ERROR_USER_NOT_FOUND
    assert error_code(connection.create_session, 'bob', 'secret') == ERROR_USER_NOT_FOUND
    assert error_code(connection.create_session, {'$ne': ''}, 'secret') == ERROR_USER_NOT_FOUND
    assert connection.create_session('alice', verify_password=False).user_id == 'alice'


def test_lowercase_user_ids_false_keeps_ids_as_given_as_1_0_12(connect, raw_db):
    connection = connect()
    connection.lowercase_user_ids = False
    connection.create_account('Carol', 'secret')
    assert raw_db.accounts.find_one()['user_id'] == 'Carol'
    assert connection.create_session('Carol', 'secret').user_id == 'Carol'
    assert error_code(connection.create_session, 'carol', 'secret') == ERROR_USER_NOT_FOUND


# -- sessions ----------------------------------------------------------------------------

def test_a_session_is_stored_with_its_key_and_loads_back(connect, raw_db):
    connection = connect(session_ttl=3600)
    connection.create_account('alice', 'secret')
    before = time.time()
    session = connection.create_session('alice', 'secret', key='hmac-key')
    document = raw_db.sessions.find_one({'session_id': session.session_id})
    document.pop('_id')
    assert document == {'user_id': 'alice', 'expires': session.expires,
                        'session_id': session.session_id, 'key': 'hmac-key'}
    assert before + 3600 <= session.expires <= time.time() + 3600
    assert re.match(r'^[A-Za-z0-9_-]{22}$', session.session_id)
    loaded = connection.retrieve_session(session.session_id)
    assert isinstance(loaded, MongoDBSession)
    assert (loaded.user_id, loaded.key, loaded.state) == ('alice', 'hmac-key', {})
    assert loaded.verify(loaded.hmac('signature'), 'signature') is loaded
    assert 'key' not in raw_db.sessions.find_one(
        {'session_id': connection.create_session('alice', 'secret').session_id})


def test_state_is_stored_as_a_protocol_0_pickle_string(connect, raw_db):
    connection = connect()
    session = connection.create_session()
    session['visits'] = 2
    session['name'] = u'été'
    session.save()
    stored = raw_db.sessions.find_one({'session_id': session.session_id})['state']
    # A BSON string (text), ASCII, as 1.0.12 stored it; bytes would have been BSON binary.
    assert isinstance(stored, six.text_type)
    assert stored.startswith('(dp') and stored.encode('ascii')
    assert TotoSession.loads(stored) == {'visits': 2, 'name': u'été'}
    loaded = connection.retrieve_session(session.session_id)
    assert loaded.state == {'visits': 2, 'name': u'été'}
    loaded.refresh()
    assert loaded['visits'] == 2


def test_a_state_that_cannot_be_stored_gives_a_clear_error(connect, raw_db):
    connection = connect()
    session = connection.create_session()
    session['callback'] = lambda: None
    with pytest.raises(TotoException) as caught:
        session.save()
    assert caught.value.code == ERROR_SERVER
    assert 'session state cannot be stored' in caught.value.value
    assert 'state' not in raw_db.sessions.find_one({'session_id': session.session_id})
    # Larger than a BSON document may be (16 MB).
    session['callback'] = 'x' * (17 * 1024 * 1024)
    with pytest.raises(TotoException) as caught:
        session.save()
    assert caught.value.code == ERROR_SERVER
    assert 'session state cannot be stored: DocumentTooLarge' in caught.value.value


def test_anonymous_sessions(connect, raw_db):
    connection = connect(session_ttl=3600, anon_session_ttl=60)
    session = connection.create_session(key='k')
    assert session.user_id == '' and session.expires <= time.time() + 60
    assert raw_db.sessions.find_one({'session_id': session.session_id})['user_id'] == ''
    loaded = connection.retrieve_session(session.session_id)
    assert (loaded.user_id, loaded.key) == ('', 'k')


def test_renewal_is_written_to_sessions_not_to_sesions(connect, raw_db):
    connection = connect(session_ttl=100, session_renew=1000)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    before = time.time()
    loaded = connection.retrieve_session(session.session_id)
    stored = raw_db.sessions.find_one({'session_id': session.session_id})['expires']
    assert stored == loaded.expires and stored >= before + 1000
    assert 'sesions' not in raw_db.list_collection_names()


def test_ended_sessions_are_not_found_and_go_when_the_user_starts_another(connect, raw_db):
    connection = connect()
    connection.create_account('alice', 'secret')
    old = connection.create_session('alice', 'secret')
    raw_db.sessions.update_one({'session_id': old.session_id},
                               {'$set': {'expires': time.time() - 1}})
    assert connection.retrieve_session(old.session_id) is None
    connection.create_session('alice', 'secret')
    assert raw_db.sessions.count_documents({'session_id': old.session_id}) == 0
    assert connection.retrieve_session(None) is None
    assert connection.retrieve_session({'$ne': ''}) is None


def test_remove_and_clear_sessions(connect, raw_db):
    connection = connect()
    connection.create_account('alice', 'secret')
    first = connection.create_session('alice', 'secret')
    second = connection.create_session('alice', 'secret')
    anonymous = connection.create_session()
    connection.remove_session(first.session_id)
    assert connection.retrieve_session(first.session_id) is None
    assert error_code(first.refresh) == ERROR_INVALID_SESSION_ID
    assert connection.retrieve_session(second.session_id) is not None
    connection.clear_sessions({'$ne': ''})  # not an id: nothing happens
    assert connection.retrieve_session(anonymous.session_id) is not None
    connection.clear_sessions('Alice')
    assert connection.retrieve_session(second.session_id) is None
    assert connection.retrieve_session(anonymous.session_id) is not None


def test_a_session_cache_keeps_sessions_out_of_the_database(connect, raw_db):
    connection = connect()
    cache = DictSessionCache()
    connection.set_session_cache(cache)
    session = connection.create_session(key='k')
    session['n'] = 1
    session.save()
    assert raw_db.sessions.count_documents({}) == 0
    assert connection.retrieve_session(session.session_id).state == {'n': 1}


# -- passwords -----------------------------------------------------------------------------

def test_change_password_ends_the_users_sessions_as_1_0_12(connect):
    connection = connect()
    connection.create_account('alice', 'old')
    session = connection.create_session('alice', 'old')
    assert error_code(connection.change_password, 'alice', 'wrong', 'new') == \
        ERROR_USER_NOT_FOUND
    connection.change_password('ALICE', 'old', 'new')
    assert connection.retrieve_session(session.session_id) is None
    assert error_code(connection.create_session, 'alice', 'old') == ERROR_USER_NOT_FOUND
    assert connection.create_session('alice', 'new').user_id == 'alice'


def test_generate_password_works(connect):
    connection = connect()
    connection.create_account('alice', 'old')
    password = connection.generate_password('alice')
    assert re.match(r'^[A-Za-z0-9]{10}$', password)
    assert connection.create_session('alice', password).user_id == 'alice'
    assert error_code(connection.generate_password, 'nobody') == ERROR_USER_NOT_FOUND


# -- account properties --------------------------------------------------------------------

def test_account_properties_are_fields_of_the_account_document(connect, raw_db):
    connection = connect()
    connection.create_account('alice', 'secret', color='red')
    session = connection.create_session('alice', 'secret')
    account = session.get_account()
    assert account['color'] == 'red' and account['missing'] is None
    account['color'] = 'blue'
    account['count'] = 0
    account.save()
    document = raw_db.accounts.find_one({'user_id': 'alice'})
    # 0 is stored as 0 (1.0.12 stored None for falsy values).
    assert (document['color'], document['count']) == ('blue', 0)
    fresh = connection.create_session('alice', 'secret').get_account()
    assert fresh.load_property('color', 'count') is fresh
    assert 'color' in fresh and 'count' in fresh
    assert MongoDBSession.MongoDBAccount is type(account)


# -- indexes, .db, layout written by 1.0.12 -------------------------------------------------

def test_indexes_are_those_of_1_0_12_and_creating_them_again_is_harmless(connect, raw_db):
    connect()
    connect()  # a second process starting on the same database
    sessions = raw_db.sessions.index_information()
    accounts = raw_db.accounts.index_information()
    assert sorted(sessions) == ['_id_', 'expires', 'session_id', 'user_id']
    assert sessions['session_id'].get('unique') is True
    assert not sessions['user_id'].get('unique') and not accounts['user_id'].get('unique')
    assert sessions['expires']['key'] == [('expires', 1)]
    assert sorted(accounts) == ['_id_', 'user_id']


def test_an_index_changed_by_hand_is_left_alone(connect, raw_db):
    raw_db.accounts.create_index([('user_id', 1)], name='user_id', unique=True)
    connect()
    assert raw_db.accounts.index_information()['user_id'].get('unique') is True


def test_db_is_a_pymongo_database_with_the_legacy_methods(connect):
    db = connect().db
    assert isinstance(db, Database)
    assert db.logs.insert({'n': 1}) is not None
    assert db.logs.find({'n': 1}).count() == 1


def test_data_written_by_1_0_12_loads(connect, raw_db):
    # As 1.0.12 left it: a mixed-case user id, a 400-iteration hash, no key, a py2 pickle.
    legacy_hash = toto.secret.password_hash('secret', legacy=True)
    raw_db.accounts.insert_one({'user_id': 'Alice', 'password': legacy_hash, 'color': 'red'})
    expires = time.time() + 3600
    raw_db.sessions.insert_one({'user_id': 'Alice', 'expires': expires,
                                'session_id': 'A' * 22, 'state': PY2_STATE_PICKLE})
    connection = connect()
    session = connection.retrieve_session('A' * 22)
    assert (session.user_id, session.key) == ('Alice', None)
    assert session.state == {'visits': 3, 'name': 'al'}
    assert session.get_account()['color'] == 'red'
    # The id as 1.0.12 knew it signs in; other cases do not, as in 1.0.12.
    assert connection.create_session('Alice', 'secret').user_id == 'Alice'
    assert error_code(connection.create_session, 'alice', 'secret') == ERROR_USER_NOT_FOUND
    assert error_code(connection.create_account, 'Alice', 'x') == ERROR_USER_ID_EXISTS
    connection.change_password('Alice', 'secret', 'new')
    assert connection.create_session('Alice', 'new').user_id == 'Alice'


def test_a_1_0_12_state_holding_utf_8_bytes_loads_as_written(connect, raw_db):
    # 1.0.12's pickle of u'\xc3\xa9' has the raw bytes C3 A9, valid UTF-8: MongoDB kept it
    # as the string u'\xe9'. The bytes it came from are those of its UTF-8 encoding.
    raw_db.sessions.insert_one({'user_id': '', 'expires': time.time() + 60,
                                'session_id': 'D' * 22,
                                'state': b"(dp1\nS'v'\nV\xc3\xa9\ns.".decode('utf-8')})
    assert connect().retrieve_session('D' * 22).state == {'v': u'\xc3\xa9'}


def test_hostile_session_rows_give_no_session(connect, raw_db):
    connection = connect()
    raw_db.sessions.insert_one({'user_id': '', 'expires': time.time() + 60,
                                'session_id': 'B' * 22, 'state': 'not a pickle'})
    raw_db.sessions.insert_one({'user_id': '', 'expires': 'soon', 'session_id': 'C' * 22})
    assert error_code(connection.retrieve_session, 'B' * 22) == ERROR_INVALID_SESSION_ID
    assert connection.retrieve_session('C' * 22) is None


# -- the server goes away and comes back ----------------------------------------------------

@pytest.mark.timeout(90)
def test_the_connection_recovers_after_a_server_restart(connect, mongodb_server):
    connection = connect(serverSelectionTimeoutMS=1000)
    connection.create_account('alice', 'secret')
    # SecantusDB loses writes since its last checkpoint on SIGKILL (a SIGTERM stop can take
    # 15 s): make them durable first, then kill.
    connection.db.client.admin.command('fsync')
    mongodb_server.stop(kill=True)
    started = time.time()
    with pytest.raises(TotoException) as raised:  # the outage, as the client sees it
        connection.create_session('alice', 'secret')
    assert raised.value.code == ERROR_SERVER
    assert raised.value.value.startswith('database mongodb unavailable: ')
    assert time.time() - started < 10
    mongodb_server.start()
    deadline = time.time() + 30
    while True:
        try:
            session = connection.create_session('alice', 'secret')
            break
        except TotoException:  # 'database mongodb unavailable: ...' until it answers
            if time.time() > deadline:
                raise
    assert connection.retrieve_session(session.session_id).user_id == 'alice'


@pytest.mark.timeout(90)
def test_a_connection_made_while_the_server_is_down_creates_its_indexes_later(
        mongodb_server, database_name, raw_db):
    mongodb_server.stop(kill=True)  # a SIGTERM stop can take 15 s
    try:
        connection = MongoDBConnection('127.0.0.1', mongodb_server.port, database_name,
                                       serverSelectionTimeoutMS=500)
    finally:
        mongodb_server.start()
    try:
        deadline = time.time() + 30
        while True:
            try:
                session = connection.create_session()
                break
            except TotoException:  # 'database mongodb unavailable: ...' until it answers
                if time.time() > deadline:
                    raise
        assert connection.retrieve_session(session.session_id) is not None
        assert 'session_id' in raw_db.sessions.index_information()
    finally:
        connection.close()


def test_a_missing_pymongo_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pymongo', None)  # import pymongo raises ImportError
    with pytest.raises(DatabaseUnavailable) as caught:
        mongodbconnection.check_from_options()
    assert str(caught.value) == (
        "database mongodb needs pymongo: pip install 'toto-compat[mongodb]'")


@pytest.mark.timeout(60)
def test_a_server_that_is_down_at_start_stops_the_check_with_one_line(mongodb_server,
                                                                      monkeypatch):
    import dbservers
    monkeypatch.setattr(mongodbconnection, '_CHECK_TIMEOUT', 1.0)
    saved = (options.db_host, options.db_port)
    options.db_host, options.db_port = '127.0.0.1', dbservers.free_port()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            mongodbconnection.check_from_options()
    finally:
        options.db_host, options.db_port = saved
    message = str(caught.value)
    assert '\n' not in message
    assert message.startswith('database mongodb: cannot connect to 127.0.0.1:')


def test_check_and_connection_from_options(mongodb_server, database_name):
    names = ('db_host', 'db_port', 'mongodb_database', 'session_ttl')
    saved = dict((name, getattr(options, name)) for name in names)
    options.db_host, options.db_port = '127.0.0.1', mongodb_server.port
    options.mongodb_database, options.session_ttl = database_name, 1234
    try:
        assert mongodbconnection.check_from_options() is None
        connection = mongodbconnection.connection_from_options()
    finally:
        for name, value in saved.items():
            setattr(options, name, value)
    try:
        assert connection.db.name == database_name and connection.session_ttl == 1234
        assert connection.create_session().user_id == ''
    finally:
        connection.close()
