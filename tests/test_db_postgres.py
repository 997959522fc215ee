"""The postgres driver and its connection pool against a real PostgreSQL server.

The run's server (tests/dbfixtures.py); each test starts on a new, empty database.
"""

from __future__ import absolute_import, division, print_function

import os
import threading
import time

import pytest
import six

from dbsql_contract import *  # noqa: F401,F403 -- the shared SQL driver tests
from dbsql_contract import ClosedPort

try:
    import psycopg2
except ImportError:  # pragma: no cover -- the library is missing here
    if os.environ.get('CI') == 'true':
        raise
    pytest.skip('psycopg2 is not installed', allow_module_level=True)

from psycopg2.pool import ThreadedConnectionPool  # noqa: E402

from toto import postgresconnection  # noqa: E402
from toto._pgpool import ConnectionPool, Row  # noqa: E402
from toto.postgresconnection import PostgresConnection, PostgresSession  # noqa: E402

# The tables 1.0.12's driver would have made (postgresconnection.py:81-96 of the original).
_TABLES_1_0_12 = [
    'create table account (account_id bigserial primary key, password char(48) default '
    'null, user_id varchar(45) not null, unique (user_id))',
    'create table session (session_id char(22) not null primary key, account_id bigint not '
    'null references account (account_id), expires double precision not null, state bytea)',
    'create index session_expires on session using btree (expires)',
]


class PostgresBackend(object):
    name = 'postgres'
    module = postgresconnection
    library = 'psycopg2'
    connection_errors = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, database):
        self.server = database.server
        self.database = database.database
        self.user = database.user
        self.password = database.password
        self._closed = ClosedPort()
        self.closed_port = self._closed.port
        self._connections = []
        self._admin = None

    def _connect_admin(self):
        connection = psycopg2.connect(host='127.0.0.1', port=self.server.port,
                                      user=self.user, database=self.database)
        connection.autocommit = True
        return connection

    def make(self, **keywords):
        connection = PostgresConnection('127.0.0.1', self.server.port, self.database,
                                        self.user, None, **keywords)
        self._connections.append(connection)
        return connection

    def admin(self, sql, *parameters):
        if self._admin is None or self._admin.closed:
            self._admin = self._connect_admin()
        cursor = self._admin.cursor()
        try:
            cursor.execute(sql, parameters or None)
            if cursor.description is None:
                return []
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def binary(self, value):
        return psycopg2.Binary(value)

    def layout(self):
        layout = {}
        for table in ('account', 'session'):
            layout[table] = dict(
                (row['name'], row['nullable']) for row in self.admin(
                    'select column_name as name, is_nullable as nullable from '
                    'information_schema.columns where table_schema = current_schema() and '
                    'table_name = %s', table))
        layout['password_width'] = self.admin(
            "select character_maximum_length as width from information_schema.columns where "
            "table_schema = current_schema() and table_name = 'account' and column_name = "
            "'password'")[0]['width']
        layout['indexes'] = sorted(row['indexname'] for row in self.admin(
            "select indexname from pg_indexes where schemaname = current_schema()"))
        return layout

    def create_1_0_12_tables(self):
        for statement in _TABLES_1_0_12:
            self.admin(statement)

    def options(self):
        return dict(db_host='127.0.0.1', db_port=self.server.port,
                    postgres_database=self.database, postgres_user=self.user,
                    postgres_password=None)

    def close(self):
        self._closed.close()
        for connection in self._connections:
            connection.close()
        if self._admin is not None:
            self._admin.close()


@pytest.fixture
def backend(postgres_db):
    backend = PostgresBackend(postgres_db)
    try:
        yield backend
    finally:
        backend.close()


# -- postgres only -----------------------------------------------------------------------

def test_the_tables_have_1_0_12_names_and_indexes(backend):
    connection = backend.make()
    assert isinstance(connection.create_session(), PostgresSession)
    layout = backend.layout()
    assert layout['indexes'] == ['account_pkey', 'account_user_id_key', 'session_expires',
                                 'session_pkey']
    assert set(layout['account']) == {'account_id', 'password', 'user_id'}
    assert set(layout['session']) == {'session_id', 'account_id', 'expires', 'state',
                                      'session_key'}


def test_the_1_0_12_tables_are_upgraded_once(backend, caplog):
    backend.create_1_0_12_tables()
    with caplog.at_level('WARNING', logger='toto.sqlsessions'):
        backend.make()
    assert len([record for record in caplog.records if 'upgraded' in record.getMessage()]) == 3
    layout = backend.layout()
    assert (layout['session']['account_id'], layout['password_width']) == ('YES', 64)
    caplog.clear()
    with caplog.at_level('WARNING', logger='toto.sqlsessions'):
        backend.make()
    assert not [record for record in caplog.records if 'upgraded' in record.getMessage()]
    assert backend.layout() == layout


def test_the_pool_has_get_query_execute(backend):
    db = backend.make().db
    assert isinstance(db, ThreadedConnectionPool) and isinstance(db, ConnectionPool)
    assert not hasattr(ThreadedConnectionPool, 'get')  # no monkeypatch of psycopg2's class
    db.execute('create table item (id serial primary key, name text)')
    assert db.execute('insert into item (name) values (%s), (%s)', 'one', u'd\u00e9ux') == 2
    assert db.execute('insert into item (name) values (%s)', ('three',)) == 1  # 1.0.12's form
    row = db.get('select id, name from item where name = %s', u'd\u00e9ux')
    # Text comes back as psycopg2 gives it: str, which on Python 2 is UTF-8 bytes (as 1.0.12).
    expected = u'd\u00e9ux' if six.PY3 else u'd\u00e9ux'.encode('utf-8')
    assert isinstance(row, Row) and row.id == 2 and row['name'] == expected
    assert db.get('select id from item where id = %(id)s', {'id': 3}).id == 3
    assert db.get('select id from item where id = 99') is None
    with pytest.raises(Exception) as raised:
        db.get('select id from item')
    assert 'Multiple rows' in str(raised.value)
    assert [item.id for item in db.query('select id from item order by id')] == [1, 2, 3]
    # A failing statement rolls back and gives its connection back.
    with pytest.raises(psycopg2.IntegrityError):
        db.execute('insert into item (id, name) values (1, %s)', 'again')
    assert not db._used
    assert db.get('select count(*) as n from item').n == 3


def test_a_broken_connection_is_closed_and_replaced(backend):
    db = backend.make().db
    pid = db.get('select pg_backend_pid() as pid').pid
    backend.admin('select pg_terminate_backend(%s)', pid)
    # The backend ends asynchronously: wait (bounded) until the server has let it go.
    deadline = time.time() + 10
    while backend.admin('select 1 from pg_stat_activity where pid = %s', pid):
        assert time.time() < deadline, 'backend %d did not end' % pid
        time.sleep(0.02)
    with pytest.raises(backend.connection_errors):
        db.get('select 1 as one')
    assert not db._used and not db._pool
    assert db.get('select 1 as one').one == 1
    assert db.get('select pg_backend_pid() as pid').pid != pid


def test_the_pool_serves_threads(backend):
    db = backend.make(max_connections=4).db
    results = []

    def work():
        for _ in range(10):
            results.append(db.get('select 1 as one').one)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [1] * 40
    assert not db._used
