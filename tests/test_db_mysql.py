"""The mysql driver and its torndb-style connection against a real MariaDB server.

The run's server (tests/dbfixtures.py); each test starts on a new, empty database.
"""

from __future__ import absolute_import, division, print_function

import os
import re
import time

import pytest

from dbsql_contract import *  # noqa: F401,F403 -- the shared SQL driver tests
from dbsql_contract import ClosedPort
from toto.exceptions import TotoException

try:
    import pymysql
except ImportError:  # pragma: no cover -- the library is missing here
    if os.environ.get('CI') == 'true':
        raise
    pytest.skip('PyMySQL is not installed', allow_module_level=True)

from toto import mysqldbconnection  # noqa: E402
from toto._torndb import Connection, Row  # noqa: E402
from toto.mysqldbconnection import MySQLdbConnection, MySQLdbSession  # noqa: E402

# 1.0.12's tables (mysqldbconnection.py:54-73 of the original), written out for the tests.
_TABLES_1_0_12 = [
    'create table `account` (`account_id` int(8) unsigned not null auto_increment, '
    '`password` char(48) default null, `user_id` varchar(191) not null, '
    'primary key (`account_id`), unique key `user_id_unique` (`user_id`), '
    'index `user_id_password` (`user_id`, `password`))',
    'create table `session` (`session_id` char(22) not null, `account_id` int(8) unsigned '
    'not null, `expires` double not null, `state` blob, primary key (`session_id`), '
    'index (`expires`), foreign key (`account_id`) references `account`(`account_id`))',
]


class MySQLBackend(object):
    name = 'mysql'
    module = mysqldbconnection
    library = 'pymysql'
    connection_errors = (pymysql.OperationalError, pymysql.InterfaceError)

    def __init__(self, database):
        self.server = database.server
        self.database = database.database
        self.user = database.user
        self.password = database.password
        self.host = '127.0.0.1:%d' % database.port
        self._closed = ClosedPort()
        self.closed_port = self._closed.port
        self._connections = []
        self._admin = self._connect_admin()

    def _connect_admin(self):
        return pymysql.connect(host='127.0.0.1', port=self.server.port, user=self.user,
                               password=self.password, autocommit=True,
                               charset='utf8mb4', database=self.database)

    def make(self, **keywords):
        connection = MySQLdbConnection(self.host, self.database, self.user,
                                       self.password, **keywords)
        self._connections.append(connection)
        return connection

    def admin(self, sql, *parameters):
        if not self._admin.open:
            self._admin = self._connect_admin()
        with self._admin.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(sql, parameters or None)
            return list(cursor.fetchall()) if cursor.description else []

    def binary(self, value):
        return value

    def layout(self):
        layout = {'create': []}
        for table in ('account', 'session'):
            create = self.admin('show create table `%s`' % table)[0]['Create Table']
            layout['create'].append(re.sub(r' AUTO_INCREMENT=\d+', '', create))
            layout[table] = dict(
                (row['name'], row['nullable']) for row in self.admin(
                    'select column_name as name, is_nullable as nullable from '
                    'information_schema.columns where table_schema = database() and '
                    'table_name = %s', table))
        layout['password_width'] = self.admin(
            "select character_maximum_length as width from information_schema.columns where "
            "table_schema = database() and table_name = 'account' and column_name = "
            "'password'")[0]['width']
        return layout

    def create_1_0_12_tables(self):
        for statement in _TABLES_1_0_12:
            self.admin(statement)

    def options(self):
        return dict(db_host='127.0.0.1', db_port=self.server.port,
                    mysql_database=self.database, mysql_user=self.user,
                    mysql_password=self.password, mysql_uuid_account_id=False)

    def close(self):
        self._closed.close()
        for connection in self._connections:
            connection.close()
        self._admin.close()


@pytest.fixture
def backend(mariadb_db):
    backend = MySQLBackend(mariadb_db)
    try:
        yield backend
    finally:
        backend.close()


# -- mysql only --------------------------------------------------------------------------

def test_uuid_account_ids_are_16_bytes(backend):
    connection = backend.make(uuid_account_id=True)
    assert 'binary(16)' in backend.layout()['create'][0]
    backend.admin('alter table account add column nickname varchar(40)')
    connection.create_account('alice', 'secret', nickname='al')
    account_id = backend.admin('select account_id from account')[0]['account_id']
    assert isinstance(account_id, bytes) and len(account_id) == 16
    session = connection.create_session('alice', 'secret', key='k')
    loaded = connection.retrieve_session(session.session_id)
    assert isinstance(loaded, MySQLdbSession)
    assert (loaded.user_id, loaded.key, loaded.account_id) == ('alice', 'k', account_id)
    account = loaded.get_account()
    assert account['nickname'] == 'al'
    account['nickname'] = 'ally'
    account.save()
    assert backend.admin('select nickname from account')[0]['nickname'] == 'ally'
    connection.change_password('alice', 'secret', 'new')
    connection.clear_sessions('alice')
    assert connection.retrieve_session(session.session_id) is None
    assert connection.create_session('alice', 'new').account_id == account_id


def test_the_1_0_12_tables_are_upgraded_once_and_keep_their_rows(backend, caplog):
    backend.create_1_0_12_tables()
    backend.admin("insert into account (user_id, password) values ('old', %s)",
                  '$p5k2$$abcdefgh$' + 'A' * 32)
    with caplog.at_level('WARNING', logger='toto.sqlsessions'):
        backend.make()
    upgrades = [record for record in caplog.records if 'upgraded' in record.getMessage()]
    assert len(upgrades) == 3
    layout = backend.layout()
    assert layout['session']['session_key'] == 'YES'
    assert layout['session']['account_id'] == 'YES'
    assert layout['password_width'] == 64
    assert 'user_id_password' in layout['create'][0] and 'user_id_unique' in layout['create'][0]
    caplog.clear()
    with caplog.at_level('WARNING', logger='toto.sqlsessions'):
        backend.make()
    assert not [record for record in caplog.records if 'upgraded' in record.getMessage()]
    assert backend.layout() == layout
    assert backend.admin('select user_id from account')[0]['user_id'] == 'old'


def test_the_connection_speaks_torndb(backend):
    db = backend.make().db
    assert isinstance(db, Connection)
    db.execute('create table item (id int auto_increment primary key, name varchar(20), '
               'made datetime)')
    assert db.execute('insert into item (name) values (%s)', 'one') == 1
    assert db.insert('insert into item (name) values (%s)', u'd\u00e9ux') == 2
    assert db.execute_lastrowid('insert into item (name) values (%(name)s)', name='three') == 3
    assert db.executemany('insert into item (name) values (%s)', [('four',), ('five',)]) >= 4
    assert db.executemany_rowcount('insert into item (name) values (%s)', [('6',), ('7',)]) == 2
    row = db.get('select id, name from item where id = %s', 2)
    assert isinstance(row, Row) and row.name == u'd\u00e9ux' and row['id'] == 2
    assert getattr(row, 'missing', 'none') == 'none'
    assert db.get('select id from item where id = %s', 99) is None
    with pytest.raises(Exception) as raised:
        db.get('select id from item')
    assert 'Multiple rows' in str(raised.value)
    assert [item.id for item in db.query('select id from item where id < %s order by id', 4)] \
        == [1, 2, 3]
    assert [item.name for item in db.iter('select name from item order by id')][:2] == [
        'one', u'd\u00e9ux']
    assert db.execute_rowcount('update item set name = %s where id > %s', 'x', 5) == 2
    assert db.update('delete from item where id = %s', 7) == 1
    # Times are UTC on this connection, whatever the server's zone.
    assert db.get("select @@session.time_zone as zone").zone == '+00:00'
    db.reconnect()
    assert db.get('select count(*) as n from item').n == 6
    db.close()
    assert db.get('select count(*) as n from item').n == 6  # a closed connection reopens
    with pytest.raises(pymysql.IntegrityError):
        db.execute('insert into item (id, name) values (1, %s)', 'again')
    assert db.get('select name from item where id = 1').name == 'one'


def test_a_socket_path_and_idle_connections(backend):
    socket_db = Connection(backend.server.path('mysqld.sock'), backend.database,
                           backend.user, backend.password, max_idle_time=0)
    try:
        assert socket_db.get('select 1 as one').one == 1
        first = socket_db._db
        assert socket_db.get('select 2 as two').two == 2
        assert socket_db._db is not first  # idle longer than max_idle_time: a new connection
    finally:
        socket_db.close()


def test_the_connection_comes_back_after_a_restart(backend):
    db = Connection(backend.host, backend.database, backend.user,
                    backend.password, connect_timeout=5, read_timeout=5)
    try:
        assert db.get('select 1 as one').one == 1
        backend.server.restart()
        with pytest.raises(backend.connection_errors):
            db.get('select 1 as one')
        assert db.get('select 1 as one').one == 1
    finally:
        db.close()


def test_a_server_that_is_down_at_construction(backend):
    db = Connection('127.0.0.1:%d' % backend.closed_port, 'x', 'u', 'p', connect_timeout=2)
    with pytest.raises(pymysql.OperationalError):
        db.get('select 1')


def test_a_server_that_stops_answering_times_out_and_is_used_again(backend):
    connection = backend.make(timeout=1)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    with backend.server.paused():
        started = time.time()
        with pytest.raises(TotoException) as raised:  # the outage, as the client sees it
            connection.retrieve_session(session.session_id)
        assert raised.value.value.startswith('database mysql unavailable: ')
        # One read timeout, then one connect timeout for the retry on a new connection.
        assert time.time() - started < 5
    assert connection.retrieve_session(session.session_id).user_id == 'alice'


@pytest.mark.timeout(60)
def test_a_write_rolled_back_by_a_deadlock_runs_again(backend):
    # Sign-ins of one user at once met InnoDB deadlocks (1213) between the deletion of
    # expired sessions and the insertions. Here a real deadlock picks the driver's
    # statement: another transaction that has changed more rows holds row 1 and then
    # wants row 2, which the driver's statement took first.
    import threading
    connection = backend.make()
    backend.admin('create table d (id int primary key, v int) engine=innodb')
    backend.admin('create table heavy (id int primary key) engine=innodb')
    backend.admin('insert into d values (1, 0), (2, 0)')
    other = backend._connect_admin()
    other.autocommit(False)
    cursor = other.cursor()
    try:
        # More undo than the driver's statement: InnoDB rolls back the lighter one.
        cursor.executemany('insert into heavy values (%s)', [(n,) for n in range(200)])
        cursor.execute('update d set v = 10 where id = 1')
        outcome = []

        def write():
            try:
                outcome.append(connection._write(
                    'update d set v = v + 1 where id in (1, 2) order by id desc'))
            except Exception as error:
                outcome.append(error)
        writer = threading.Thread(target=write)
        writer.start()
        # Until the driver's statement holds row 2 (and so waits for row 1).
        deadline = time.time() + 10
        while _row_free(backend, 2):
            assert time.time() < deadline, 'the statement never took row 2'
            time.sleep(0.01)
        cursor.execute('update d set v = 20 where id = 2')  # the deadlock: the driver loses
        other.commit()
        writer.join(30)
    finally:
        cursor.close()
        other.close()
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    # Run again after the rollback, once the other transaction committed: both rows +1.
    assert [row['v'] for row in backend.admin('select v from d order by id')] == [11, 21]


def _row_free(backend, row_id):
    try:
        backend.admin('select v from d where id = %s for update nowait', row_id)
        return True
    except pymysql.OperationalError:  # 1205 at once: another transaction holds it
        return False
