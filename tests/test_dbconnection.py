# -*- coding: utf-8 -*-
"""DBConnection: the account and session API, session lifetimes, options, configured_connection.

The API runs on the JSON driver, in memory, with a file, and with a session cache; the
``none`` driver has its own tests (test_fakeconnection.py).
"""

from __future__ import absolute_import, division, print_function

import os
import re
import time

import pytest
from tornado.options import options

import dbsupport
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse
import toto.exceptions
from toto.dbconnection import DBConnection, DatabaseUnavailable, configured_connection
from toto.exceptions import (ERROR_INVALID_USER_ID, ERROR_USER_ID_EXISTS, ERROR_USER_NOT_FOUND,
                             TotoException)
from toto.fakeconnection import FakeConnection
from toto.jsondbconnection import JSONConnection, JSONSession
from toto.session import TotoSession

DB_OPTIONS = {
    # name: (type, default) as Toto 1.0.12 defined them
    'database': (str, 'none'),
    'db_host': (str, 'localhost'),
    'db_port': (int, 0),
    'mysql_database': (str, None),
    'mysql_user': (str, None),
    'mysql_password': (str, None),
    'mysql_uuid_account_id': (bool, False),
    'postgres_database': (str, None),
    'postgres_user': (str, None),
    'postgres_password': (str, None),
    'postgres_min_connections': (int, 1),
    'postgres_max_connections': (int, 100),
    'mongodb_database': (str, 'toto_server'),
    'redis_database': (int, 0),
    'session_ttl': (int, 31536000),
    'anon_session_ttl': (int, 86400),
    'session_renew': (int, 0),
    'anon_session_renew': (int, 0),
}


@pytest.fixture
def db_options():
    saved = dict((name, getattr(options, name)) for name in DB_OPTIONS)
    try:
        yield options
    finally:
        for name, value in saved.items():
            setattr(options, name, value)


@pytest.fixture(params=['memory', 'file', 'cache'])
def connection(request, tmpdir):
    """A JSON connection: in memory, written to a file, or keeping sessions in a cache."""
    if request.param == 'file':
        return JSONConnection(str(tmpdir.join('store.json')), persistent=True)
    connection = JSONConnection()
    if request.param == 'cache':
        connection.set_session_cache(dbsupport.DictSessionCache())
    return connection


def toto_error(call, *args, **kwargs):
    with pytest.raises(TotoException) as raised:
        call(*args, **kwargs)
    return raised.value


# -- error codes --------------------------------------------------------------------------

@pytest.mark.xfail(toto.exceptions.ERROR_USER_NOT_FOUND != 1005, strict=True,
                   reason='toto/exceptions.py on this branch predates the 1.0.12 numbers')
def test_account_error_numbers_are_those_of_toto_1_0_12():
    assert (ERROR_USER_NOT_FOUND, ERROR_USER_ID_EXISTS, ERROR_INVALID_USER_ID) == (
        1005, 1006, 1010)


# -- accounts -----------------------------------------------------------------------------

def test_create_account_then_sign_in_with_any_case(connection):
    connection.create_account('Alice', 'secret', nickname='al')
    session = connection.create_session('ALICE', 'secret')
    assert session.user_id == 'alice'
    assert re.match(r'^[A-Za-z0-9_-]{22}$', session.session_id)


@pytest.mark.parametrize('user_id', ['', None, {'$ne': ''}, ['alice'], 7])
def test_create_account_without_a_text_user_id_is_invalid_user_id(connection, user_id):
    error = toto_error(connection.create_account, user_id, 'secret')
    assert (error.code, error.value) == (ERROR_INVALID_USER_ID, 'Invalid user ID.')


def test_create_account_twice_is_user_id_exists_whatever_the_case(connection):
    connection.create_account('alice', 'secret')
    error = toto_error(connection.create_account, 'ALICE', 'other')
    assert (error.code, error.value) == (ERROR_USER_ID_EXISTS, 'User ID already in use.')
    # The first password still works.
    assert connection.create_session('alice', 'secret').user_id == 'alice'


@pytest.mark.parametrize('user_id, password', [
    ('alice', 'wrong'), ('bob', 'secret'), ('alice', None), ('alice', ''),
    ({'$ne': ''}, 'secret'), (['alice'], 'secret'), (7, 'secret')])
def test_bad_credentials_are_user_not_found(connection, user_id, password):
    connection.create_account('alice', 'secret')
    error = toto_error(connection.create_session, user_id, password)
    assert (error.code, error.value) == (ERROR_USER_NOT_FOUND, 'Invalid user ID or password')


def test_a_session_without_password_check_for_other_sign_in_methods(connection):
    connection.create_account('alice', 'secret')
    assert connection.create_session('alice', 'anything', verify_password=False).user_id == \
        'alice'
    # An unknown account still fails.
    error = toto_error(connection.create_session, 'bob', None, verify_password=False)
    assert error.code == ERROR_USER_NOT_FOUND


def test_stored_password_is_a_p5k2_hash_never_the_password(connection):
    import toto.secret
    connection.create_account('alice', 'secret')
    stored = connection._get_account('alice')['password']
    assert stored.startswith('$p5k2$') and 'secret' not in stored
    assert toto.secret.verify_password('secret', stored)


def test_change_password(connection):
    connection.create_account('alice', 'old')
    connection.change_password('Alice', 'old', 'new')
    assert connection.create_session('alice', 'new').user_id == 'alice'
    assert toto_error(connection.create_session, 'alice', 'old').code == ERROR_USER_NOT_FOUND


@pytest.mark.parametrize('user_id, password', [('alice', 'wrong'), ('bob', 'old'), (None, 'x'),
                                               ({'$ne': ''}, 'old')])
def test_change_password_with_bad_credentials_is_user_not_found(connection, user_id, password):
    connection.create_account('alice', 'old')
    error = toto_error(connection.change_password, user_id, password, 'new')
    assert (error.code, error.value) == (ERROR_USER_NOT_FOUND, 'Invalid user ID or password')
    assert connection.create_session('alice', 'old').user_id == 'alice'


def test_generate_password_gives_ten_letters_and_digits_that_sign_in(connection):
    connection.create_account('alice', 'old')
    passwords = set()
    for _ in range(3):
        password = connection.generate_password('ALICE')
        assert re.match(r'^[A-Za-z0-9]{10}$', password)
        assert connection.create_session('alice', password).user_id == 'alice'
        passwords.add(password)
    assert len(passwords) == 3
    assert toto_error(connection.create_session, 'alice', 'old').code == ERROR_USER_NOT_FOUND


def test_generate_password_for_unknown_user_is_user_not_found(connection):
    error = toto_error(connection.generate_password, 'nobody')
    assert (error.code, error.value) == (ERROR_USER_NOT_FOUND, 'Invalid user ID')


def test_generated_passwords_come_from_the_system_random_source():
    import random
    import toto.dbconnection
    assert isinstance(toto.dbconnection._system_random, random.SystemRandom)


# -- sessions -----------------------------------------------------------------------------

def test_anonymous_session_has_an_empty_user_id(connection):
    session = connection.create_session()
    assert session.user_id == ''
    assert connection.retrieve_session(session.session_id).user_id == ''


def test_session_state_and_key_survive_save_and_lookup(connection):
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret', key='hmac-key')
    session['cart'] = [u'café', 2]
    session['seen'] = True
    session.save()
    found = connection.retrieve_session(session.session_id)
    assert found.state == {'cart': [u'café', 2], 'seen': True}
    assert found.key == 'hmac-key'
    assert found.verify(session.hmac('POST/x'), 'POST/x') is found


def test_unknown_or_empty_session_id_finds_nothing(connection):
    assert connection.retrieve_session('AAAAAAAAAAAAAAAAAAAAAA') is None
    assert connection.retrieve_session('') is None
    assert connection.retrieve_session(None) is None


def test_removed_session_is_gone(connection):
    session = connection.create_session()
    connection.remove_session(session.session_id)
    assert connection.retrieve_session(session.session_id) is None


def test_refresh_reloads_the_stored_state(connection):
    session = connection.create_session()
    other = connection.retrieve_session(session.session_id)
    other['n'] = 5
    other.save()
    assert session['n'] is None
    session.refresh()
    assert session['n'] == 5


def test_account_properties_through_the_session(connection):
    connection.create_account('alice', 'secret')
    account = connection.create_session('alice', 'secret').get_account()
    assert account['nickname'] is None  # 1.0.12 raised TypeError here (nothing saved yet)
    account['nickname'] = 'al'
    account.save()
    again = connection.create_session('alice', 'secret').get_account()
    assert again['nickname'] == 'al'
    assert again.load_property('nickname', 'age') is again


# -- session lifetimes ----------------------------------------------------------------------

def test_lifetime_settings_follow_1_0_12_defaults_and_fallbacks():
    connection = DBConnection()
    assert (connection.session_ttl, connection.anon_session_ttl, connection.session_renew,
            connection.anon_session_renew) == (31536000, 86400, 31536000, 86400)
    # 0 means "the ttl" (for anonymous: the user ttl when anon_session_ttl is 0 too).
    connection = DBConnection(100, 0, 0, 0)
    assert (connection.anon_session_ttl, connection.session_renew,
            connection.anon_session_renew) == (100, 100, 100)
    connection = DBConnection(100, 50, 10, 0)
    assert (connection.anon_session_ttl, connection.session_renew,
            connection.anon_session_renew) == (50, 10, 50)
    assert connection.expire_sessions is True
    assert DBConnection(expire_sessions=False).expire_sessions is False


def test_the_class_attribute_turns_expiry_off_for_every_connection(monkeypatch):
    connection = JSONConnection()
    session = connection.create_session()
    set_stored_expires(connection, session.session_id, time.time() - 1)
    monkeypatch.setattr(DBConnection, 'expire_sessions', False)
    assert connection.retrieve_session(session.session_id) is not None
    assert JSONConnection(expire_sessions=True).expire_sessions is True


def stored_expires(connection, session_id):
    return connection.get('session', session_id)['expires']


def set_stored_expires(connection, session_id, expires):
    connection.set('session', session_id, 'expires', expires)


def test_new_sessions_last_the_ttl():
    connection = JSONConnection(None, False, 1000, 300)
    connection.create_account('alice', 'secret')
    before = time.time()
    user = connection.create_session('alice', 'secret')
    anonymous = connection.create_session()
    after = time.time()
    assert before + 1000 <= user.expires <= after + 1000
    assert before + 300 <= anonymous.expires <= after + 300


def test_renew_zero_slides_the_end_to_now_plus_ttl_on_every_lookup():
    connection = JSONConnection(None, False, 1000, 300)
    session = connection.create_session()
    set_stored_expires(connection, session.session_id, time.time() + 10)
    before = time.time()
    found = connection.retrieve_session(session.session_id)
    after = time.time()
    assert before + 300 <= found.expires <= after + 300
    assert stored_expires(connection, session.session_id) == found.expires


def test_renew_below_ttl_waits_until_the_end_is_near_then_extends_by_renew_only():
    connection = JSONConnection(None, False, session_ttl=1000, session_renew=100)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    # Far from its end: untouched.
    assert connection.retrieve_session(session.session_id).expires == session.expires
    # Within `renew` seconds of its end: now + renew, not now + ttl.
    set_stored_expires(connection, session.session_id, time.time() + 50)
    before = time.time()
    found = connection.retrieve_session(session.session_id)
    after = time.time()
    assert before + 100 <= found.expires <= after + 100
    assert stored_expires(connection, session.session_id) == found.expires


def test_zero_session_ttl_falls_back_to_the_anonymous_ttl_as_in_1_0_12():
    connection = JSONConnection(None, False, session_ttl=0, anon_session_ttl=300)
    connection.create_account('alice', 'secret')
    before = time.time()
    session = connection.create_session('alice', 'secret')
    assert before + 300 <= session.expires <= time.time() + 300


def test_an_ended_session_is_not_found():
    connection = JSONConnection()
    session = connection.create_session()
    set_stored_expires(connection, session.session_id, time.time() - 1)
    assert connection.retrieve_session(session.session_id) is None


def test_expire_sessions_false_keeps_1_0_12_where_ended_sessions_come_back_renewed():
    connection = JSONConnection(expire_sessions=False, anon_session_ttl=300)
    session = connection.create_session()
    set_stored_expires(connection, session.session_id, time.time() - 1000)
    before = time.time()
    found = connection.retrieve_session(session.session_id)
    assert found is not None and found.expires >= before + 300


# -- session caches -------------------------------------------------------------------------

def test_with_a_cache_sessions_go_to_the_cache_not_the_database():
    connection = JSONConnection()
    cache = dbsupport.DictSessionCache()
    connection.set_session_cache(cache)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    assert session.session_id in cache.sessions
    assert connection.get('session', session.session_id) is None
    session['n'] = 1
    session.save()
    assert connection.retrieve_session(session.session_id)['n'] == 1
    connection.remove_session(session.session_id)
    assert cache.removed == [session.session_id]
    assert connection.retrieve_session(session.session_id) is None


def test_a_cache_may_give_sessions_new_ids():
    connection = JSONConnection()
    connection.set_session_cache(dbsupport.IdCarryingSessionCache())
    session = connection.create_session()
    first_id = session.session_id
    session['n'] = 1
    session.save()
    assert session.session_id != first_id
    found = connection.retrieve_session(session.session_id)
    assert found['n'] == 1
    # Each renewing lookup stores the session again, under a new id.
    assert found.session_id != session.session_id
    assert connection.retrieve_session(found.session_id)['n'] == 1


def test_an_ended_cached_session_is_not_found():
    connection = JSONConnection()
    connection.set_session_cache(dbsupport.IdCarryingSessionCache())
    session = connection.create_session()
    session.expires = time.time() - 1
    session.save()
    assert connection.retrieve_session(session.session_id) is None


# -- the base class -------------------------------------------------------------------------

def test_driver_hooks_are_unimplemented_in_the_base():
    connection = DBConnection()
    with pytest.raises(NotImplementedError):
        connection.create_account('alice', 'secret')
    with pytest.raises(NotImplementedError):
        connection.create_session()
    with pytest.raises(NotImplementedError):
        connection.retrieve_session('x')
    with pytest.raises(NotImplementedError):
        connection.remove_session('x')
    assert connection.clear_sessions('alice') is None


def test_names_1_0_12_made_reachable_from_the_module():
    import toto.dbconnection as module
    assert module.TotoSession is TotoSession
    assert module.TotoException is TotoException
    assert module.ERROR_USER_NOT_FOUND == ERROR_USER_NOT_FOUND


# -- options --------------------------------------------------------------------------------

def test_database_options_have_the_names_types_and_defaults_of_1_0_12():
    for name, (kind, default) in DB_OPTIONS.items():
        option = options._options[name.replace('_', '-')]  # tornado's normalized name
        assert (option.type, option.default) == (kind, default), name
        # Grouped under this module in --help, as they were.
        assert os.path.basename(option.file_name).startswith('dbconnection.py'), name


def test_command_line_and_conf_file_set_the_options(db_options, tmpdir):
    conf = tmpdir.join('toto.conf')
    conf.write("database = 'json'\nsession_ttl = 60\nmysql_uuid_account_id = True\n")
    db_options.parse_config_file(str(conf), final=False)
    assert (db_options.database, db_options.session_ttl,
            db_options.mysql_uuid_account_id) == ('json', 60, True)
    db_options.parse_command_line(['prog', '--db_port=1', '--anon_session_renew=5',
                                   '--db_host=store.json', '--redis_database=2'], final=False)
    assert (db_options.db_port, db_options.anon_session_renew, db_options.db_host,
            db_options.redis_database) == (1, 5, 'store.json', 2)


# -- configured_connection ------------------------------------------------------------------

def test_database_none_gives_a_fake_connection_with_the_session_options(db_options):
    db_options.database = 'none'
    db_options.anon_session_ttl = 77
    connection = configured_connection()
    assert isinstance(connection, FakeConnection)
    assert connection.db is None and connection.anon_session_ttl == 77


def test_database_json_gives_a_pool_around_a_json_connection_in_memory(db_options):
    db_options.database = 'json'
    db_options.db_host = ''
    db_options.session_ttl = 1234
    pooled = configured_connection()
    assert not isinstance(pooled, JSONConnection)
    # As in 1.0.12, the pool answers every attribute with a function, handler.db included.
    assert callable(pooled.db)
    pooled.create_account('alice', 'secret')
    before = time.time()
    session = pooled.create_session('alice', 'secret')
    assert isinstance(session, JSONSession)
    assert before + 1234 <= session.expires <= time.time() + 1234
    assert pooled.retrieve_session(session.session_id).user_id == 'alice'


def test_database_json_with_a_port_writes_the_file_named_by_db_host(db_options, tmpdir):
    path = str(tmpdir.join('store.json'))
    db_options.database = 'json'
    db_options.db_host = path
    db_options.db_port = 1
    configured_connection().create_account('alice', 'secret')
    assert JSONConnection(path).create_session('alice', 'secret').user_id == 'alice'


def test_an_unknown_database_is_an_error_unless_the_old_fallback_is_asked_for(db_options):
    db_options.database = 'mongo'
    with pytest.raises(DatabaseUnavailable) as raised:
        configured_connection()
    assert "unknown database 'mongo'" in str(raised.value)
    assert 'json' in str(raised.value) and 'none' in str(raised.value)
    assert isinstance(configured_connection(fallback_to_fake=True), FakeConnection)


def test_a_json_file_that_is_not_there_stops_the_start_with_one_line(db_options, tmp_path):
    from toto.dbconnection import check_configured_database
    db_options.database = 'json'
    db_options.db_host = str(tmp_path / 'missing.json')
    db_options.db_port = 0
    with pytest.raises(DatabaseUnavailable) as raised:
        check_configured_database()
    message = str(raised.value)
    assert 'missing.json' in message and '--db_port=1' in message and '\n' not in message
    db_options.db_port = 1  # the file is made by the first change
    check_configured_database()


def test_a_json_file_written_by_several_processes_is_warned_about(db_options, tmp_path,
                                                                   caplog):
    import toto.service  # noqa: F401 -- defines --processes
    from toto.dbconnection import check_configured_database
    saved_processes = options.processes
    db_options.database = 'json'
    db_options.db_host = str(tmp_path / 'shared.json')
    db_options.db_port = 1
    options.processes = 2
    try:
        check_configured_database()
    finally:
        options.processes = saved_processes
    assert any('each of the 2 processes keeps its own copy' in record.getMessage()
               for record in caplog.records)
