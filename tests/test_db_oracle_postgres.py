"""1.0.12's PostgreSQL code, with its constructor bypassed, and this package's driver.

1.0.12's ``PostgresConnection`` can never be constructed (its ``__init__`` names undefined
``args``), so no 1.0.12 deployment has PostgreSQL data. What its code would have done is still
worth checking: its tables (made by its ``create_tables``) upgrade here and its accounts log
in here, and it reads the accounts this package writes. Its sessions cannot be checked: its
``create_session`` fails (no ``_prepare_session``). Runs under ``$TOTO_ORACLE_DB_PYTHON``
(Toto 1.0.12 with psycopg2 2.8.6); without it the tests skip (under CI they fail).
"""

from __future__ import absolute_import, division, print_function

import json
import os

import pytest

from dboracle import oracle_python, run_script
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture

try:
    import psycopg2  # noqa: F401 -- the driver needs it
except ImportError:  # pragma: no cover -- the library is missing here
    if os.environ.get('CI') == 'true':
        raise
    pytest.skip('psycopg2 is not installed', allow_module_level=True)

from toto.postgresconnection import PostgresConnection  # noqa: E402

# Runs under 1.0.12's Python 2.7: "1.0.12's PostgreSQL code with its constructor bypassed".
_ORACLE_SCRIPT = r'''
import json, sys
from psycopg2.pool import ThreadedConnectionPool
from toto.dbconnection import DBConnection
from toto.postgresconnection import PostgresConnection
import toto.secret as secret

request = json.loads(sys.argv[1])
connection = PostgresConnection.__new__(PostgresConnection)
DBConnection.__init__(connection)
connection.db = ThreadedConnectionPool(1, 2, host='127.0.0.1', port=request['port'],
                                       database=request['database'], user=request['user'])
results = []
for step in request['steps']:
    if step[0] == 'create_tables':
        connection.create_tables()
        results.append(None)
    elif step[0] == 'create_account':
        connection.create_account(step[1], step[2])
        results.append(None)
    elif step[0] == 'check_password':
        account = connection._get_account(step[1])
        results.append(bool(account) and secret.verify_password(step[2], account['password']))
connection.db.closeall()
print(json.dumps(results))
'''


@pytest.fixture
def both(postgres_db, tmp_path):
    python = oracle_python('TOTO_ORACLE_DB_PYTHON', 'toto 1.0.12 and psycopg2')
    mine = []

    def make():
        connection = PostgresConnection('127.0.0.1', postgres_db.port, postgres_db.database,
                                        postgres_db.user, None)
        mine.append(connection)
        return connection

    def oracle(*steps):
        request = dict(port=postgres_db.port, database=postgres_db.database,
                       user=postgres_db.user, steps=steps)
        return run_script(python, ['-c', _ORACLE_SCRIPT, json.dumps(request)], tmp_path)

    try:
        yield make, oracle
    finally:
        for connection in mine:
            connection.close()


@pytest.mark.timeout(120)
def test_1_0_12_tables_and_accounts_work_here(both):
    make, oracle = both
    oracle(['create_tables'], ['create_account', 'Alice', 'secret'])
    mine = make()
    assert mine.create_session('alice', 'secret', key='k').key == 'k'
    assert mine.create_session().user_id == ''


@pytest.mark.timeout(120)
def test_1_0_12_reads_the_accounts_written_here(both):
    make, oracle = both
    mine = make()
    mine.create_account('Bob', 'secret')
    assert oracle(['create_tables'], ['check_password', 'bob', 'secret'],
                  ['check_password', 'bob', 'wrong'], ['create_account', 'carol', 'other']) \
        == [None, True, False, None]
    assert mine.create_session('carol', 'other').user_id == 'carol'
