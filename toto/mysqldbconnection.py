"""The ``--database=mysql`` driver: accounts and sessions in MySQL or MariaDB tables.

The tables are Toto 1.0.12's, so a database it filled keeps working, and it can read what
this driver writes::

    account(account_id int(8) unsigned auto_increment primary key  -- binary(16) uuid4 bytes
                                                                   -- with uuid_account_id
            password varchar(64), user_id varchar(191) unique key user_id_unique,
            index user_id_password (user_id, password), <columns the application adds>)
    session(session_id char(22) primary key, account_id (as above) null references account,
            expires double (seconds since the epoch, indexed), state blob (protocol-0 pickle),
            session_key varchar(255) null)

``session_key`` and the nullable ``account_id`` are new (the session's HMAC key and
anonymous sessions, which 1.0.12 lost and crashed on); ``password`` was ``char(48)``, too
narrow for hashes of more than 400 iterations. Tables of 1.0.12 are altered once at start
unless ``--database_schema_upgrade=false`` (see :mod:`toto._sqlsessions`). Usage::

    from toto.mysqldbconnection import MySQLdbConnection

    connection = MySQLdbConnection('127.0.0.1:3306', 'app', 'user', 'secret')
    connection.create_account('alice', 'secret', nickname='al')   # nickname: a column
    session = connection.create_session('alice', 'secret')
    row = connection.db.get('select nickname from account where user_id = %s', 'alice')

``connection.db`` is a torndb-style :class:`toto._torndb.Connection` (PyMySQL underneath:
``pip install 'toto-compat[mysql]'``; neither MySQLdb nor torndb is needed). It belongs to
the thread that made the connection; the driver's own work on other threads uses one
connection per thread.
"""

from __future__ import absolute_import, division, print_function

import logging
import socket

from tornado.options import options

from toto._dboffload import import_driver
from toto._sqlsessions import (PASSWORD_WIDTH, Dialect, SQLAccount, SQLConnection, SQLSession,
                               ThreadLocalHandles)
from toto.dbconnection import DatabaseUnavailable, _session_settings

__all__ = ['MySQLdbConnection', 'MySQLdbSession', 'check_from_options',
           'connection_from_options']

logger = logging.getLogger('toto.mysqldbconnection')

_DEFAULT_PORT = 3306
_CHECK_TIMEOUT = 5.0


class _MySQLDialect(Dialect):
    name = 'mysql'

    def __init__(self):
        pymysql = import_driver('pymysql', 'mysql', 'mysql')
        self.connection_errors = (pymysql.OperationalError, pymysql.InterfaceError)
        self.integrity_error = pymysql.IntegrityError
        self._binary = pymysql.Binary
        self._operational_error = pymysql.OperationalError

    def is_deadlock(self, error):
        # 1213: ER_LOCK_DEADLOCK, "try restarting transaction".
        return (isinstance(error, self._operational_error) and bool(error.args)
                and error.args[0] == 1213)

    def account_table(self, uuid_account_id):
        account_id = ('`account_id` binary(16) not null' if uuid_account_id
                      else '`account_id` int(8) unsigned not null auto_increment')
        return ['create table if not exists `account` (%s, `password` varchar(%d) default '
                'null, `user_id` varchar(191) not null, primary key (`account_id`), '
                'unique key `user_id_unique` (`user_id`), '
                'index `user_id_password` (`user_id`, `password`))'
                % (account_id, PASSWORD_WIDTH)]

    def session_table(self, uuid_account_id):
        account_id = ('`account_id` binary(16) null' if uuid_account_id
                      else '`account_id` int(8) unsigned null')
        return ['create table if not exists `session` (`session_id` char(22) not null, %s, '
                '`expires` double not null, `state` blob, `session_key` varchar(255) null, '
                'primary key (`session_id`), index (`expires`), '
                'foreign key (`account_id`) references `account`(`account_id`))'
                % account_id]

    def add_session_key(self):
        return 'alter table `session` add column `session_key` varchar(255) null'

    def allow_anonymous(self, account_id_type):
        return 'alter table `session` modify `account_id` %s null' % account_id_type

    def widen_password(self):
        return 'alter table `account` modify `password` varchar(%d) default null' % (
            PASSWORD_WIDTH,)

    def clear_sessions(self):
        return ('delete `session` from `session` join `account` on '
                '`account`.`account_id` = `session`.`account_id` where `account`.`user_id` = %s')

    def columns_query(self):
        return ('select column_name as name, is_nullable as nullable, column_type, '
                'character_maximum_length as width from information_schema.columns '
                'where table_schema = database() and table_name = %s')

    def binary(self, value):
        return self._binary(value) if value is not None else None


class MySQLdbAccount(SQLAccount):
    """Account properties: columns of ``account``."""


class MySQLdbSession(SQLSession):
    """A row of ``session`` (``account_id`` None for an anonymous session)."""

    account_class = MySQLdbAccount


# 1.0.12 defined the account class inside the session class.
MySQLdbSession.MySQLdbAccount = MySQLdbAccount  # type: ignore[attr-defined]


class MySQLdbConnection(SQLConnection):
    """Accounts and sessions in MySQL/MariaDB; ``host`` is ``'host:port'`` or a socket path.

    ``uuid_account_id`` gives new accounts uuid4 ids (``binary(16)``). ``pool_size`` is
    accepted for 1.0.12's signature (it did nothing there either). Keywords:
    ``schema_upgrade`` (default: ``--database_schema_upgrade``), ``timeout`` (seconds to
    connect, read, write; default ``--database_timeout``), and the session settings of
    :class:`~toto.dbconnection.DBConnection`.
    """

    blocking = True
    session_class = MySQLdbSession

    def __init__(self, host, database, username, password, uuid_account_id=False, pool_size=1,
                 *args, **kwargs):
        from toto._torndb import Connection
        schema_upgrade = kwargs.pop('schema_upgrade', None)
        if schema_upgrade is None:
            schema_upgrade = options.database_schema_upgrade
        timeout = kwargs.pop('timeout', None) or options.database_timeout
        dialect = _MySQLDialect()

        def connect():
            return Connection(host, database, username, password, connect_timeout=timeout,
                              read_timeout=timeout, write_timeout=timeout)

        db = connect()
        self._handles = ThreadLocalHandles(db, connect)
        super(MySQLdbConnection, self).__init__(db, dialect, uuid_account_id, schema_upgrade,
                                                *args, **kwargs)

    def _sql(self):
        return self._handles.get()

    def close(self):
        """Close every connection this driver opened (``db`` included)."""
        self._handles.close()
        self.db.close()


def _address():
    return '%s:%s' % (options.db_host, options.db_port or _DEFAULT_PORT)


def connection_from_options():
    """The driver ``--database=mysql`` and its options ask for."""
    return MySQLdbConnection(_address(), options.mysql_database, options.mysql_user,
                             options.mysql_password, options.mysql_uuid_account_id,
                             **_session_settings())


def check_from_options():
    """Raise DatabaseUnavailable (one line) unless the MySQL server answers within 5 s."""
    pymysql = import_driver('pymysql', 'mysql', 'mysql')
    address = _address()
    target = dict(host=options.db_host or 'localhost', port=options.db_port or _DEFAULT_PORT)
    if '/' in (options.db_host or ''):
        target = dict(unix_socket=options.db_host)
    try:
        connection = pymysql.connect(user=options.mysql_user, password=options.mysql_password
                                     or '', database=options.mysql_database,
                                     connect_timeout=_CHECK_TIMEOUT, read_timeout=_CHECK_TIMEOUT,
                                     write_timeout=_CHECK_TIMEOUT, **target)
    except (pymysql.Error, socket.error) as error:
        raise DatabaseUnavailable('database mysql: cannot connect to %s as %s (%s)'
                                  % (address, options.mysql_user, _one_line(error)))
    try:
        connection.ping(reconnect=False)
    except (pymysql.Error, socket.error) as error:
        raise DatabaseUnavailable('database mysql: %s as %s does not answer (%s)'
                                  % (address, options.mysql_user, _one_line(error)))
    finally:
        connection.close()


def _one_line(error):
    return ' '.join(str(error).split())
