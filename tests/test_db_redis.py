"""The redis driver and RedisSessionCache against a real redis-server (tests/dbfixtures.py).

Besides the behaviour, the tests read what the driver stored with a plain client and check
Toto 1.0.12's layout: hash ``account:<user_id>``, string ``session:<session_id>`` holding the
protocol 0 pickle of the session data dict, with a TTL.
"""

from __future__ import absolute_import, division, print_function

import pickle
import time

import pytest
import six

from dbfixtures import require_library
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture
from toto.exceptions import (ERROR_INVALID_SESSION_ID, ERROR_SERVER, ERROR_USER_ID_EXISTS,
                             ERROR_USER_NOT_FOUND, TotoException)
from toto.jsondbconnection import JSONConnection
from toto.session import TotoSession


@pytest.fixture
def client(redis_db):
    """A plain redis-py client of the test's (emptied) database."""
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    client = redis.StrictRedis('127.0.0.1', redis_db.port, db=redis_db.database)
    yield client
    client.connection_pool.disconnect()


@pytest.fixture
def connection(client, redis_db):
    from toto.redisconnection import RedisConnection
    connection = RedisConnection('127.0.0.1', redis_db.port, redis_db.database,
                                 session_ttl=3600, anon_session_ttl=600)
    yield connection
    connection.db.connection_pool.disconnect()


def _stored_session(client, session_id):
    raw = client.get('session:%s' % session_id)
    return TotoSession.loads(raw) if raw is not None else None


def test_the_constructor_takes_1_0_12s_arguments_and_the_session_options(connection, redis_db):
    from toto.redisconnection import RedisConnection
    kwargs = connection.db.connection_pool.connection_kwargs
    assert (kwargs['host'], kwargs['port'], kwargs['db']) == ('127.0.0.1', redis_db.port, 0)
    assert connection.session_ttl == 3600 and connection.anon_session_ttl == 600
    assert RedisConnection().db.connection_pool.connection_kwargs['port'] == 6379
    assert connection.db.ping()


def test_an_account_is_the_hash_account_user_id(connection, client):
    connection.create_account('Alice', 'secret', nickname='al', age=7, missing=None)
    stored = client.hgetall('account:alice')
    assert stored[b'user_id'] == b'alice' and stored[b'nickname'] == b'al'
    assert stored[b'age'] == b'7' and stored[b'missing'] == b'None'  # as redis-py 2 wrote it
    assert stored[b'password'].startswith(b'$p5k2$')
    with pytest.raises(TotoException) as raised:
        connection.create_account('ALICE', 'other')
    assert raised.value.code == ERROR_USER_ID_EXISTS
    assert client.hget('account:alice', 'password') == stored[b'password']


def test_an_account_written_by_1_0_12_logs_in(connection, client):
    # 1.0.12 (meant to) HMSET the create values; its hashes use the same pbkdf2 format.
    import toto.secret
    client.hset('account:bob', 'user_id', 'bob')
    client.hset('account:bob', 'password', toto.secret.password_hash('pw'))
    session = connection.create_session('Bob', 'pw')
    assert session.user_id == 'bob'
    with pytest.raises(TotoException) as raised:
        connection.create_session('bob', 'wrong')
    assert raised.value.code == ERROR_USER_NOT_FOUND


def test_a_session_is_the_pickled_session_data_with_a_ttl(connection, client):
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret', key='hmac-key')
    raw = client.get('session:%s' % session.session_id)
    assert raw.startswith(b'(dp') and raw.endswith(b's.')  # protocol 0 dict
    data = pickle.loads(raw)
    assert data['user_id'] == 'alice' and data['session_id'] == session.session_id
    assert data['key'] == 'hmac-key' and abs(data['expires'] - time.time() - 3600) < 60
    assert 3500 < client.ttl('session:%s' % session.session_id) <= 3600

    session['cart'] = [1, u'\xe9']
    session.save()
    data = _stored_session(client, session.session_id)
    assert TotoSession.loads(data['state']) == {'cart': [1, u'\xe9']}

    again = connection.retrieve_session(session.session_id)
    assert again['cart'] == [1, u'\xe9'] and again.key == 'hmac-key'
    assert again.user_id == 'alice'


def test_a_lookup_renews_the_session_and_its_ttl(client, redis_db):
    from toto.redisconnection import RedisConnection
    connection = RedisConnection('127.0.0.1', redis_db.port, 0, session_ttl=100,
                                 session_renew=1000)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    assert client.ttl('session:%s' % session.session_id) <= 100
    again = connection.retrieve_session(session.session_id)
    assert again.expires > session.expires + 800
    assert client.ttl('session:%s' % session.session_id) > 900
    assert _stored_session(client, session.session_id)['expires'] == again.expires


def test_anonymous_sessions_and_removal(connection, client):
    session = connection.create_session()
    assert session.user_id == ''
    assert client.ttl('session:%s' % session.session_id) <= 600
    assert connection.retrieve_session(session.session_id).user_id == ''
    connection.remove_session(session.session_id)
    assert client.exists('session:%s' % session.session_id) == 0
    assert connection.retrieve_session(session.session_id) is None
    # A save after the logout does not bring the session back.
    session['late'] = True
    session.save()
    assert client.exists('session:%s' % session.session_id) == 0
    with pytest.raises(TotoException) as raised:
        session.refresh()
    assert raised.value.code == ERROR_INVALID_SESSION_ID


def test_refresh_reloads_what_another_process_saved(connection):
    session = connection.create_session()
    other = connection.retrieve_session(session.session_id)
    other['seen'] = 2
    other.save()
    assert session['seen'] is None
    session.refresh()
    assert session['seen'] == 2


def test_passwords_change_and_are_generated(connection, client):
    connection.create_account('alice', 'secret')
    connection.change_password('alice', 'secret', 'new')
    assert connection.create_session('alice', 'new').user_id == 'alice'
    generated = connection.generate_password('Alice')
    assert len(generated) == 10
    assert connection.create_session('alice', generated).user_id == 'alice'
    assert client.hget('account:alice', 'user_id') == b'alice'


def test_clear_sessions_ends_only_that_users_sessions(connection, client):
    for user_id in ('alice', 'bob'):
        connection.create_account(user_id, 'pw')
    alices = [connection.create_session('alice', 'pw') for _ in range(3)]
    bobs = connection.create_session('bob', 'pw')
    anonymous = connection.create_session()
    connection.clear_sessions('ALICE')
    assert all(connection.retrieve_session(s.session_id) is None for s in alices)
    assert connection.retrieve_session(bobs.session_id).user_id == 'bob'
    assert connection.retrieve_session(anonymous.session_id) is not None


def test_account_properties_are_fields_of_the_account_hash(connection, client):
    connection.create_account('alice', 'secret', nickname='al')
    session = connection.create_session('alice', 'secret')
    account = session.get_account()
    assert account['nickname'] == 'al' and account['nothing'] is None
    account['color'] = u'bl\xe9'
    account['visits'] = 3
    account.save()
    assert client.hget('account:alice', 'color') == u'bl\xe9'.encode('utf-8')
    fresh = connection.retrieve_session(session.session_id).get_account()
    # Python 2 gets the stored str, as 1.0.12 did; Python 3 text decoded from UTF-8.
    expected = u'bl\xe9'.encode('utf-8') if six.PY2 else u'bl\xe9'
    assert fresh.load_property('color', 'visits')['color'] == expected
    assert fresh['visits'] in ('3', b'3')


@pytest.mark.parametrize('stored', [b'not a pickle', pickle.dumps([1, 2], 0),
                                    pickle.dumps({'user_id': 'x'}, 0)])
def test_a_damaged_session_value_is_no_session(connection, client, stored):
    client.set('session:damaged', stored)
    assert connection.retrieve_session('damaged') is None


def test_redis_session_cache_keeps_sessions_of_another_database(client):
    from toto.redisconnection import RedisSessionCache
    accounts = JSONConnection(session_ttl=3600)
    accounts.set_session_cache(RedisSessionCache(client))
    accounts.create_account('alice', 'secret')
    session = accounts.create_session('alice', 'secret')
    assert _stored_session(client, session.session_id)['user_id'] == 'alice'
    session['x'] = 1
    session.save()
    assert accounts.retrieve_session(session.session_id)['x'] == 1
    accounts.remove_session(session.session_id)
    assert accounts.retrieve_session(session.session_id) is None


def test_a_session_that_has_ended_is_stored_for_one_second_not_refused(client):
    from toto.redisconnection import RedisSessionCache
    cache = RedisSessionCache(client)
    cache.store_session({'user_id': 'a', 'session_id': 'old', 'expires': time.time() - 50})
    assert client.ttl('session:old') == 1


@pytest.mark.timeout(30)
def test_a_stopped_or_frozen_server_is_a_server_error_within_the_timeout(client, redis_db):
    from toto.redisconnection import RedisConnection
    connection = RedisConnection('127.0.0.1', redis_db.port, 0, timeout=0.5)
    session = connection.create_session()
    with redis_db.server.paused():
        started = time.time()
        with pytest.raises(TotoException) as raised:
            connection.retrieve_session(session.session_id)
        assert time.time() - started < 3
    assert raised.value.code == ERROR_SERVER
    assert 'database redis unavailable' in raised.value.value
    redis_db.server.stop()
    try:
        with pytest.raises(TotoException) as raised:
            connection.create_session()
        assert raised.value.code == ERROR_SERVER
    finally:
        redis_db.server.start()
    # The same connection works again once the server is back (its data kept).
    assert connection.retrieve_session(session.session_id).session_id == session.session_id
