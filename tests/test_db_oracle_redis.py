# -*- coding: utf-8 -*-
"""Differential: sessions Toto 1.0.12's RedisSessionCache stored load here, and ours load there.

1.0.12's ``RedisSessionCache`` is the Redis code of 1.0.12 that worked (its RedisConnection
could not be constructed), so its ``session:<id>`` values are the Redis data that exists. The
original runs in ``$TOTO_ORACLE_DB_PYTHON`` (Python 2.7 with toto 1.0.12 and redis-py 3.5.3,
made by .ci/run); without it the tests skip, or fail under ``$CI``. Both sides use the same
redis-server (tests/dbfixtures.py). Each side signs in through its JSONConnection with the
Redis cache, keeps state and a key in a signed-in and an anonymous session, and then reads the
other side's sessions, through the cache and (here) through RedisConnection too.
"""

from __future__ import absolute_import, division, print_function

import datetime
import time

import pytest
import six

from dbfixtures import require_library
from dboracle import PORTABLE, oracle_python, portable, run_script
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture
from toto.jsondbconnection import JSONConnection

ORACLE_SCRIPT = PORTABLE + r'''
import json, sys
import redis
from toto.jsondbconnection import JSONConnection
from toto.redisconnection import RedisSessionCache

port, mode = int(sys.argv[1]), sys.argv[2]
client = redis.StrictRedis('127.0.0.1', port)
db = JSONConnection(None, False, 3600, 600)
db.set_session_cache(RedisSessionCache(client))
if mode == 'write':
    db.create_account('Alice', 'secret')
    session = db.create_session('alice', 'secret', key='oracle-key')
    for k, v in {'count': 3, 'city': u'\u20ac-town', 'latin': u'caf\xe9',
                 'utf8': 'caf\xc3\xa9', 'tags': ['a', u'b'], 'nothing': None,
                 'when': datetime.datetime(2015, 7, 1, 12, 30, 5)}.items():
        session[k] = v
    session.save()
    anonymous = db.create_session()
    anonymous['cart'] = ['apple', u'pear']
    anonymous.save()
    keyed = db.create_session('alice', 'secret', key='kept-key')  # never saved: keeps its key
    print(json.dumps({'user': session.session_id, 'anonymous': anonymous.session_id,
                      'keyed': keyed.session_id}))
else:
    found = {}
    for session_id in sys.argv[3:]:
        session = db.retrieve_session(session_id)
        found[session_id] = session and {
            'user_id': session.user_id, 'key': session.key, 'expires': session.expires,
            'state': portable(session.state), 'ttl': client.ttl('session:' + session_id)}
    print(json.dumps(found))
'''

ORACLE_STATE = {'count': 3, 'city': u'\u20ac-town', 'latin': u'caf\xe9', 'utf8': u'caf\xe9',
                'tags': ['a', u'b'], 'nothing': None, 'when': '2015-07-01T12:30:05'}
# A Python 2 str of 1.0.12's state is a str on Python 2 and UTF-8-decoded text on Python 3.
_ORACLE_STATE_HERE = dict((name, value) for name, value in ORACLE_STATE.items()
                          if name != 'count')
if six.PY2:
    _ORACLE_STATE_HERE['utf8'] = {'bytes': '636166c3a9'}
OUR_STATE = {'count': 3, 'latin': u'caf\xe9', 'emoji': u'\U0001f600', 'raw': b'\xff\x00',
             'when': datetime.datetime(2020, 2, 29, 1, 2, 3), 'day': datetime.date(2020, 2, 29)}


@pytest.fixture
def oracle():
    return oracle_python('TOTO_ORACLE_DB_PYTHON', 'toto==1.0.12 and redis==3.5.3')


@pytest.fixture
def client(redis_db):
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    client = redis.StrictRedis('127.0.0.1', redis_db.port)
    yield client
    client.connection_pool.disconnect()


def run_oracle(oracle, port, *args):
    return run_script(oracle, ['-c', ORACLE_SCRIPT, str(port)] + list(args))


def _ours(client):
    from toto.redisconnection import RedisSessionCache
    connection = JSONConnection(session_ttl=3600, anon_session_ttl=600)
    connection.set_session_cache(RedisSessionCache(client))
    return connection


@pytest.mark.timeout(60)
def test_sessions_1_0_12_stored_in_redis_load_here(oracle, client, redis_db):
    from toto.redisconnection import RedisConnection
    ids = run_oracle(oracle, redis_db.port, 'write')
    for connection in (_ours(client), RedisConnection('127.0.0.1', redis_db.port, 0,
                                                      session_ttl=3600, anon_session_ttl=600)):
        session = connection.retrieve_session(ids['user'])
        # 1.0.12's save() stores the session without its key (its session_data() has none).
        assert session.user_id == 'alice' and session.key is None
        assert connection.retrieve_session(ids['keyed']).key == 'kept-key'
        state = portable(session.state)
        assert state.pop('count') in (3, 4)  # 4 once the first connection saved it
        assert state == _ORACLE_STATE_HERE
        assert abs(session.expires - time.time() - 3600) < 60
        anonymous = connection.retrieve_session(ids['anonymous'])
        assert anonymous.user_id == '' and anonymous.state == {'cart': ['apple', u'pear']}
        # Saved here, the session still loads there with the change.
        session['count'] = 4
        session.save()
    back = run_oracle(oracle, redis_db.port, 'read', ids['user'])[ids['user']]
    assert back['user_id'] == 'alice' and back['key'] is None
    # Saved from Python 3, the str became text (toto.session's rule), which 1.0.12 reads back.
    utf8 = {'bytes': '636166c3a9'} if six.PY2 else u'caf\xe9'
    assert back['state'] == dict(ORACLE_STATE, count=4, utf8=utf8)


@pytest.mark.timeout(60)
def test_sessions_stored_here_load_in_1_0_12(oracle, client, redis_db):
    from toto.redisconnection import RedisConnection
    ours = _ours(client)
    ours.create_account('alice', 'secret')
    cached = ours.create_session('alice', 'secret', key='our-key')
    for name, value in OUR_STATE.items():
        cached[name] = value
    cached.save()
    driver = RedisConnection('127.0.0.1', redis_db.port, 0, session_ttl=3600,
                             anon_session_ttl=600)
    anonymous = driver.create_session(key='anon-key')
    anonymous['cart'] = [u'pe\xe4r']
    anonymous.save()

    found = run_oracle(oracle, redis_db.port, 'read', cached.session_id, anonymous.session_id)
    mine = found[cached.session_id]
    assert mine['user_id'] == 'alice' and mine['key'] == 'our-key'
    expected = portable(OUR_STATE)
    assert mine['state'] == expected
    assert 3500 < mine['ttl'] <= 3600 and abs(mine['expires'] - time.time() - 3600) < 60
    theirs = found[anonymous.session_id]
    assert theirs['user_id'] == '' and theirs['key'] == 'anon-key'
    assert theirs['state'] == {'cart': [u'pe\xe4r']} and 500 < theirs['ttl'] <= 600
