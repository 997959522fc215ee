# -*- coding: utf-8 -*-
"""Differential: Toto 1.0.12's MongoDB driver and ours on the same database, both ways.

The original runs as "1.0.12 on pymongo 3.13 with a Connection alias, against SecantusDB":
1.0.12 needs pymongo < 3, whose legacy opcodes neither SecantusDB nor mongod >= 6 accept, so
its interpreter (``$TOTO_ORACLE_DB_PYTHON``: Python 2.7 with toto==1.0.12 and pymongo==3.13.0)
gets ``pymongo.Connection = pymongo.MongoClient`` from a test-only sitecustomize. The server is
SecantusDB, a MongoDB wire server standing in for mongod. Without ``$TOTO_ORACLE_DB_PYTHON``
the tests skip, unless ``CI=true``, where they fail.

Each side creates an account with a field, signs in, keeps state in the session and a property
in the account, and keeps state in an anonymous session; the other side signs in with the same
password and loads both sessions with their state, expiry and key.
"""

from __future__ import absolute_import, division, print_function

import datetime
import json
import subprocess

import pytest
import six

from dboracle import PORTABLE, oracle_environment, oracle_python, portable, run_script
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse
from mongosupport import CLIENT_TIMEOUTS, require_pymongo, skip_or_fail
from mongosupport import database_name_fixture  # noqa: F401

require_pymongo()

from toto.mongodbconnection import MongoDBConnection  # noqa: E402

LABEL = '1.0.12 on pymongo 3.13 with a Connection alias, against SecantusDB'

# What 1.0.12 stores: nothing in U+0080..U+00FF, which its pickle writes as raw bytes that
# pymongo refuses to store (InvalidStringData).
ORACLE_STATE = {'count': 3, 'city': u'\u20ac-town', 'tags': ['a', u'b'], 'ratio': 0.25,
                'flag': True, 'nothing': None}
# What this package stores: the same plus Latin-1 range text (our pickle is ASCII).
OUR_STATE = dict(ORACLE_STATE, latin=u'café', day=datetime.date(2020, 2, 29))
ANONYMOUS_STATE = {'cart': ['apple', u'pear']}

SITECUSTOMIZE = '''\
# Test only: Toto 1.0.12 calls pymongo.Connection, which pymongo 3 renamed MongoClient.
import pymongo
if not hasattr(pymongo, 'Connection'):
    pymongo.Connection = pymongo.MongoClient
'''

ORACLE_SCRIPT = PORTABLE + r'''
import json, sys
import pymongo
from toto.mongodbconnection import MongoDBConnection

request = json.loads(sys.argv[1])
assert pymongo.version_tuple[0] == 3, pymongo.version
# session_renew=1: lookups leave the stored expiry alone, so both sides can compare it.
db = MongoDBConnection('127.0.0.1', request['port'], request['database'], session_ttl=3600,
                       anon_session_ttl=600, session_renew=1, anon_session_renew=1)
if request['action'] == 'write':
    db.create_account('Bob', 'secret', color='red')
    session = db.create_session('Bob', 'secret')
    for k, v in request['state'].items():
        session[k] = v
    session.save()
    account = session.get_account()
    account['nickname'] = 'bo'
    account.save()
    anonymous = db.create_session()
    for k, v in request['anonymous_state'].items():
        anonymous[k] = v
    anonymous.save()
    print(json.dumps({'user': session.session_id, 'user_expires': session.expires,
                      'anonymous': anonymous.session_id,
                      'anonymous_expires': anonymous.expires}))
else:
    signed_in = db.create_session(request['user_id'], 'secret')
    answer = {'signed_in': signed_in.user_id}
    for name in ('user', 'anonymous'):
        session = db.retrieve_session(request[name])
        answer[name] = {'user_id': session.user_id, 'expires': session.expires,
                        'key': session.key, 'state': portable(session.state)}
    answer['nickname'] = db.retrieve_session(request['user']).get_account()['nickname']
    print(json.dumps(answer))
'''


@pytest.fixture
def oracle(tmpdir):
    """oracle(request dict) -> the 1.0.12 side's JSON answer."""
    python = oracle_python('TOTO_ORACLE_DB_PYTHON', 'toto==1.0.12 and pymongo==3.13.0 (%s)'
                           % LABEL)
    shim = tmpdir.mkdir('shim')
    shim.join('sitecustomize.py').write(SITECUSTOMIZE)
    script = tmpdir.join('oracle_mongodb.py')
    script.write(ORACLE_SCRIPT)
    environment = oracle_environment(PYTHONPATH=str(shim))
    version = subprocess.check_output(
        [python, '-c', 'import pymongo; print(pymongo.version)'], env=environment,
        cwd=str(tmpdir)).decode('ascii').strip()
    if not version.startswith('3.'):
        skip_or_fail('the oracle has pymongo %s; %s needs pymongo==3.13.0 in %s'
                     % (version, LABEL, python))

    def run(request):
        return run_script(python, [str(script), json.dumps(request)], tmpdir, environment)

    return run


@pytest.fixture
def ours(mongodb_server, database_name):
    connection = MongoDBConnection('127.0.0.1', mongodb_server.port, database_name,
                                   session_ttl=3600, anon_session_ttl=600, session_renew=1,
                                   anon_session_renew=1, **CLIENT_TIMEOUTS)
    yield connection
    connection.close()


@pytest.mark.timeout(120)
def test_what_1_0_12_wrote_signs_in_and_loads_here(oracle, ours, mongodb_server,
                                                   database_name):
    """1.0.12 on pymongo 3.13 with a Connection alias, against SecantusDB, writes; we read."""
    written = oracle({'action': 'write', 'port': mongodb_server.port,
                      'database': database_name, 'state': ORACLE_STATE,
                      'anonymous_state': ANONYMOUS_STATE})
    assert ours.create_session('Bob', 'secret').user_id == 'Bob'
    session = ours.retrieve_session(written['user'])
    assert (session.user_id, session.key) == ('Bob', None)
    assert session.expires == written['user_expires']
    assert portable(session.state) == ORACLE_STATE
    assert session.get_account()['nickname'] == 'bo'
    assert session.get_account()['color'] == 'red'
    anonymous = ours.retrieve_session(written['anonymous'])
    assert (anonymous.user_id, anonymous.expires) == ('', written['anonymous_expires'])
    assert portable(anonymous.state) == ANONYMOUS_STATE


@pytest.mark.timeout(120)
def test_what_we_write_signs_in_and_loads_on_1_0_12(oracle, ours, mongodb_server,
                                                    database_name):
    """We write; 1.0.12 on pymongo 3.13 with a Connection alias, against SecantusDB, reads.

    1.0.12 cannot store a key itself, but reads the ``key`` field of our documents.
    """
    ours.create_account('Carol', 'secret', color='green')   # stored as 'carol'
    session = ours.create_session('carol', 'secret', key='hmac-key')
    for key, value in OUR_STATE.items():
        session[key] = value
    session.save()
    account = session.get_account()
    account['nickname'] = 'ca'
    account.save()
    anonymous = ours.create_session(key='anonymous-key')
    for key, value in ANONYMOUS_STATE.items():
        anonymous[key] = value
    anonymous.save()
    read = oracle({'action': 'read', 'port': mongodb_server.port, 'database': database_name,
                   'user_id': 'carol', 'user': session.session_id,
                   'anonymous': anonymous.session_id})
    assert read['signed_in'] == 'carol'
    assert read['user'] == {'user_id': 'carol', 'expires': session.expires,
                            'key': 'hmac-key', 'state': portable(OUR_STATE)}
    assert read['anonymous'] == {'user_id': '', 'expires': anonymous.expires,
                                 'key': 'anonymous-key', 'state': ANONYMOUS_STATE}
    assert read['nickname'] == 'ca'
    assert isinstance(read['user']['state']['latin'], six.text_type)
