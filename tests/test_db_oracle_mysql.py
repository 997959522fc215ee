"""Toto 1.0.12's mysql driver and this package's on the same MariaDB database, both ways.

1.0.12 runs in its own Python 2.7 (``$TOTO_ORACLE_DB_PYTHON``: toto 1.0.12 with torndb and
mysqlclient 1.3.14) from a small script; without it the tests skip (under CI they fail).
What is checked: an account made by one logs in on the other, and a session made by one loads
on the other with its state and expiry. The HMAC key cannot be checked across: 1.0.12 never
stores it (its insert names three columns) and never reads ``session_key``.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess

import pytest

from dboracle import oracle_environment, oracle_python, run_script
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture

try:
    import pymysql  # noqa: F401 -- the driver needs it
except ImportError:  # pragma: no cover -- the library is missing here
    if os.environ.get('CI') == 'true':
        raise
    pytest.skip('PyMySQL is not installed', allow_module_level=True)

from toto.mysqldbconnection import MySQLdbConnection  # noqa: E402

# Runs under 1.0.12's Python 2.7: reads the steps as JSON, prints the results as JSON.
_ORACLE_SCRIPT = r'''
import json, sys
from toto.mysqldbconnection import MySQLdbConnection

request = json.loads(sys.argv[1])
connection = MySQLdbConnection(request['host'], request['database'], request['user'],
                               request['password'], request.get('uuid', False))
results = []
for step in request['steps']:
    name, arguments = step[0], step[1:]
    if name == 'create_account':
        connection.create_account(*arguments)
        results.append(None)
    elif name == 'login':
        session = connection.create_session(*arguments)
        results.append({'session_id': session.session_id, 'expires': session.expires,
                        'user_id': session.user_id})
    elif name == 'save_state':
        session = connection.retrieve_session(arguments[0])
        session.state.update(arguments[1])
        session.save()
        results.append(None)
    elif name == 'retrieve':
        session = connection.retrieve_session(arguments[0])
        results.append(session and {'user_id': session.user_id, 'expires': session.expires,
                                    'state': session.state, 'key': session.key})
print(json.dumps(results))
'''


def _oracle_python():
    return oracle_python('TOTO_ORACLE_DB_PYTHON', 'toto 1.0.12, torndb and mysqlclient')


class _Both(object):
    """The same database for this package's driver and 1.0.12's."""

    def __init__(self, database, directory):
        self.info = database
        self.directory = str(directory)
        self.host = '127.0.0.1:%d' % database.port
        self._mine = []

    def mine(self, **keywords):
        connection = MySQLdbConnection(self.host, self.info.database, self.info.user,
                                       self.info.password, **keywords)
        self._mine.append(connection)
        return connection

    def oracle(self, *steps, **keywords):
        request = dict(host=self.host, database=self.info.database, user=self.info.user,
                       password=self.info.password, steps=steps, **keywords)
        return run_script(_oracle_python(), ['-c', _ORACLE_SCRIPT, json.dumps(request)],
                          self.directory)

    def close(self):
        for connection in self._mine:
            connection.close()


@pytest.fixture
def both(mariadb_db, tmp_path):
    _oracle_python()
    both = _Both(mariadb_db, tmp_path)
    try:
        yield both
    finally:
        both.close()


STATE = {'visits': 3, 'name': u'\u00e9l\u00e8ve', 'items': [1, 2]}


@pytest.mark.timeout(120)
def test_what_1_0_12_wrote_works_here(both):
    created = both.oracle(['create_account', 'Alice', 'secret'], ['login', 'alice', 'secret'])
    session = created[1]
    both.oracle(['save_state', session['session_id'], STATE])
    mine = both.mine()  # upgrades 1.0.12's tables
    loaded = mine.retrieve_session(session['session_id'])
    assert (loaded.user_id, loaded.state, loaded.key) == ('alice', STATE, None)
    assert abs(loaded.expires - session['expires']) < 60
    assert mine.create_session('ALICE', 'secret').user_id == 'alice'
    # 1.0.12 still works on its upgraded tables, and does not see anonymous sessions.
    anonymous = mine.create_session(key='k')
    again = both.oracle(['login', 'alice', 'secret'], ['retrieve', session['session_id']],
                        ['retrieve', anonymous.session_id])
    assert again[0]['user_id'] == 'alice'
    assert again[1]['state'] == STATE
    assert again[2] is None


@pytest.mark.timeout(120)
def test_what_this_package_writes_works_on_1_0_12(both):
    mine = both.mine()
    mine.create_account('Bob', 'secret')
    session = mine.create_session('bob', 'secret', key='hmac-key')
    session['visits'] = 3
    session['name'] = u'\u00e9l\u00e8ve'
    session['items'] = [1, 2]
    session.save()
    results = both.oracle(['retrieve', session.session_id], ['login', 'bob', 'secret'],
                          ['create_account', 'carol', 'other'])
    assert results[0]['user_id'] == 'bob' and results[0]['state'] == STATE
    assert abs(results[0]['expires'] - session.expires) < 60
    assert results[0]['key'] is None  # 1.0.12 does not read session_key
    assert results[1]['user_id'] == 'bob'
    # ... and what 1.0.12 wrote into this package's tables works here.
    assert mine.retrieve_session(results[1]['session_id']).user_id == 'bob'
    assert mine.create_session('carol', 'other').user_id == 'carol'
    assert mine.retrieve_session(session.session_id).key == 'hmac-key'


@pytest.mark.timeout(120)
def test_uuid_account_ids_both_ways(both):
    mine = both.mine(uuid_account_id=True)
    mine.create_account('dave', 'secret')
    results = both.oracle(['login', 'dave', 'secret'], ['create_account', 'erin', 'other'],
                          ['login', 'erin', 'other'], uuid=True)
    assert mine.retrieve_session(results[0]['session_id']).user_id == 'dave'
    erin = mine.retrieve_session(results[2]['session_id'])
    assert erin.user_id == 'erin' and len(erin.account_id) == 16
    assert mine.create_session('erin', 'other').account_id == erin.account_id


def test_the_oracle_is_1_0_12(both):
    output = subprocess.check_output(
        [_oracle_python(), '-c', 'import toto, torndb; print(toto.__file__)'],
        cwd=both.directory, env=oracle_environment())
    assert b'site-packages' in output and b'wt-' not in output
