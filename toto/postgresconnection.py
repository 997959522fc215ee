"""The ``--database=postgres`` driver: accounts and sessions in PostgreSQL tables.

The tables are those Toto 1.0.12's driver meant to create (its constructor always failed, so
no 1.0.12 data can exist; tables made by hand to its design are used as they are)::

    account(account_id bigserial primary key, password varchar(64),
            user_id varchar(45) not null unique, <columns the application adds>)
    session(session_id char(22) primary key, account_id bigint null references account,
            expires double precision not null (index session_expires), state bytea,
            session_key varchar(255) null)

``session_key`` and the nullable ``account_id`` keep the HMAC key and allow anonymous
sessions; ``password`` was ``char(48)``, too narrow for hashes of more than 400 iterations.
Existing tables get these changes at start unless ``--database_schema_upgrade=false`` (see
:mod:`toto._sqlsessions`). Usage::

    from toto.postgresconnection import PostgresConnection

    connection = PostgresConnection('127.0.0.1', 5432, 'app', 'toto', 'secret')
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    row = connection.db.get('select account_id from account where user_id = %s', 'alice')

``connection.db`` is a :class:`toto._pgpool.ConnectionPool` (a psycopg2
``ThreadedConnectionPool`` with ``get``/``query``/``execute``), safe to share between
threads. psycopg2 comes with ``pip install 'toto-compat[postgres]'``.
"""

from __future__ import absolute_import, division, print_function

import logging

from tornado.options import options

from toto._dboffload import import_driver
from toto._sqlsessions import PASSWORD_WIDTH, Dialect, SQLAccount, SQLConnection, SQLSession
from toto.dbconnection import DatabaseUnavailable, _session_settings

__all__ = ['PostgresConnection', 'PostgresSession', 'check_from_options',
           'connection_from_options']

logger = logging.getLogger('toto.postgresconnection')

_DEFAULT_PORT = 5432
_CHECK_TIMEOUT = 5


def _import_psycopg2():
    psycopg2 = import_driver('psycopg2', 'postgres', 'postgres')
    import_driver('psycopg2.pool', 'postgres', 'postgres')  # the driver's pool (toto._pgpool)
    return psycopg2


class _PostgresDialect(Dialect):
    name = 'postgres'

    def __init__(self):
        psycopg2 = _import_psycopg2()
        self.connection_errors = (psycopg2.OperationalError, psycopg2.InterfaceError)
        self.integrity_error = psycopg2.IntegrityError
        self._binary = psycopg2.Binary

    def is_deadlock(self, error):
        # 40P01: deadlock_detected, 40001: serialization_failure; both roll back.
        return getattr(error, 'pgcode', None) in ('40P01', '40001')

    def account_table(self, uuid_account_id):
        return ['create table if not exists account (account_id bigserial primary key, '
                'password varchar(%d) default null, user_id varchar(45) not null, '
                'unique (user_id))' % PASSWORD_WIDTH]

    def session_table(self, uuid_account_id):
        return ['create table if not exists session (session_id char(22) not null primary '
                'key, account_id bigint null references account (account_id), '
                'expires double precision not null, state bytea, session_key varchar(255))',
                'create index if not exists session_expires on session using btree (expires)']

    def add_session_key(self):
        return 'alter table session add column if not exists session_key varchar(255)'

    def allow_anonymous(self, account_id_type):
        return 'alter table session alter column account_id drop not null'

    def widen_password(self):
        return 'alter table account alter column password type varchar(%d)' % PASSWORD_WIDTH

    def clear_sessions(self):
        return ('delete from session using account where account.account_id = '
                'session.account_id and account.user_id = %s')

    def columns_query(self):
        return ('select column_name as name, is_nullable as nullable, data_type as '
                'column_type, character_maximum_length as width from '
                'information_schema.columns where table_schema = current_schema() and '
                'table_name = %s')

    def binary(self, value):
        return self._binary(value) if value is not None else None


class PostgresAccount(SQLAccount):
    """Account properties: columns of ``account``."""


class PostgresSession(SQLSession):
    """A row of ``session`` (``account_id`` None for an anonymous session)."""

    account_class = PostgresAccount


# 1.0.12 defined the account class inside the session class.
PostgresSession.PostgresAccount = PostgresAccount  # type: ignore[attr-defined]


class PostgresConnection(SQLConnection):
    """Accounts and sessions in PostgreSQL, through a pool of ``min_connections`` to
    ``max_connections`` connections.

    Keywords: ``schema_upgrade`` (default: ``--database_schema_upgrade``), ``timeout``
    (seconds to connect; default ``--database_timeout``), and the session settings of
    :class:`~toto.dbconnection.DBConnection` (1.0.12's signature had no place for them).
    """

    session_class = PostgresSession
    blocking = True

    def __init__(self, host, port, database, username, password, min_connections=1,
                 max_connections=10, *args, **kwargs):
        dialect = _PostgresDialect()
        from toto._pgpool import ConnectionPool
        schema_upgrade = kwargs.pop('schema_upgrade', None)
        if schema_upgrade is None:
            schema_upgrade = options.database_schema_upgrade
        timeout = kwargs.pop('timeout', None) or options.database_timeout
        settings = dict(database=database, user=username, host=host, port=port or _DEFAULT_PORT,
                        connect_timeout=max(1, int(round(timeout))), keepalives=1,
                        keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        if password:
            settings['password'] = password
        db = ConnectionPool(min_connections, max_connections, **settings)
        super(PostgresConnection, self).__init__(db, dialect, False, schema_upgrade, *args,
                                                 **kwargs)

    def close(self):
        """Close every connection of the pool."""
        if not self.db.closed:
            self.db.closeall()


def _address():
    return '%s:%s' % (options.db_host, options.db_port or _DEFAULT_PORT)


def connection_from_options():
    """The driver ``--database=postgres`` and its options ask for."""
    return PostgresConnection(options.db_host, options.db_port or _DEFAULT_PORT,
                              options.postgres_database, options.postgres_user,
                              options.postgres_password, options.postgres_min_connections,
                              options.postgres_max_connections, **_session_settings())


def check_from_options():
    """Raise DatabaseUnavailable (one line) unless the PostgreSQL server answers within 5 s."""
    psycopg2 = _import_psycopg2()
    settings = dict(database=options.postgres_database, user=options.postgres_user,
                    host=options.db_host, port=options.db_port or _DEFAULT_PORT,
                    connect_timeout=_CHECK_TIMEOUT, options='-c statement_timeout=5000')
    if options.postgres_password:
        settings['password'] = options.postgres_password
    try:
        connection = psycopg2.connect(**settings)
    except psycopg2.Error as error:
        raise DatabaseUnavailable('database postgres: cannot connect to %s as %s (%s)'
                                  % (_address(), options.postgres_user, _one_line(error)))
    try:
        cursor = connection.cursor()
        cursor.execute('select 1')
        cursor.close()
    except psycopg2.Error as error:
        raise DatabaseUnavailable('database postgres: %s as %s does not answer (%s)'
                                  % (_address(), options.postgres_user, _one_line(error)))
    finally:
        connection.close()


def _one_line(error):
    return ' '.join(str(error).split())
