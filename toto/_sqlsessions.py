"""Accounts and sessions in SQL tables: the logic the MySQL and PostgreSQL drivers share.

The tables are Toto 1.0.12's (``account`` and ``session``, created at start when missing);
the SQL each database spells differently comes from a small dialect object. A driver is a
subclass of :class:`SQLConnection` that builds its ``db`` handle and names its dialect::

    class MySQLdbConnection(SQLConnection):
        session_class = MySQLdbSession

        def __init__(self, host, database, username, password, *args, **kwargs):
            db = Connection(host, database, username, password)
            super(MySQLdbConnection, self).__init__(db, _MySQLDialect(), False, True,
                                                    *args, **kwargs)

The ``db`` handle (what applications get) answers ``get(sql, *parameters)`` (one row as a
dict, or None), ``query(sql, *parameters)`` and ``execute(sql, *parameters)``, ``%s``
placeholders. What 1.0.12 could not do needs two changes to its ``session`` table: the
session's HMAC ``key`` in a new nullable column ``session_key``, and anonymous sessions,
which need ``session.account_id`` to allow NULL. New tables are created with both; existing
ones are altered once at start (logged; a column is only added or relaxed, never dropped)
unless ``schema_upgrade`` is False. Without them the key is not kept (as in 1.0.12) and an
anonymous session is refused with a clear ``TotoException``. 1.0.12 keeps working on the
altered tables: it names its columns and joins sessions to accounts, so it does not see
anonymous sessions.

Column names never come from a client unchecked: account fields given to
``create_account`` and account properties must be plain identifiers naming columns of
``account`` (1.0.12 wrote them into the SQL as given).

A database that cannot be reached makes the driver's calls raise ``TotoException(ERROR_SERVER,
'database <name> unavailable: ...')`` (:func:`toto._dboffload.translated`); the next call
connects again, so a server that comes back is used without a restart. ``db`` itself (what
applications call) raises the client library's errors, as in 1.0.12.
"""

from __future__ import absolute_import, division, print_function

import logging
import re
import threading
import time
import weakref
from uuid import uuid4

import six

from toto._dboffload import translated
from toto.dbconnection import DBConnection
from toto.exceptions import (ERROR_INVALID_SESSION_ID, ERROR_SERVER, ERROR_USER_ID_EXISTS,
                             TotoException)
from toto.session import TotoAccount, TotoSession

logger = logging.getLogger('toto.sqlsessions')

_IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,63}\Z')

#: How many times a write rolled back by a deadlock is tried in all.
_DEADLOCK_ATTEMPTS = 3

#: Width of ``account.password`` in new tables: every hash toto.secret writes fits in 62.
PASSWORD_WIDTH = 64


class Dialect(object):
    """What one SQL database spells its own way; subclasses fill in the statements."""

    #: The ``--database`` name, for messages.
    name = 'sql'
    #: Errors after which a statement may succeed on a new connection.
    connection_errors = ()
    #: The error a duplicate unique key raises.
    integrity_error = ()

    def is_deadlock(self, error):
        """Whether ``error`` rolled the statement back to break a deadlock (safe to retry)."""
        return False

    def account_table(self, uuid_account_id):
        """The statements creating ``account``."""
        raise NotImplementedError()

    def session_table(self, uuid_account_id):
        """The statements creating ``session`` (nullable ``account_id``, ``session_key``)."""
        raise NotImplementedError()

    def add_session_key(self):
        raise NotImplementedError()

    def allow_anonymous(self, account_id_type):
        """The statement letting ``session.account_id`` be NULL (its type is given)."""
        raise NotImplementedError()

    def widen_password(self):
        raise NotImplementedError()

    def clear_sessions(self):
        """Delete the sessions of the account whose ``user_id`` is the one parameter."""
        raise NotImplementedError()

    def columns_query(self):
        """Select name, nullable ('YES'/'NO'), column_type, width of a table's columns."""
        raise NotImplementedError()

    def binary(self, value):
        """``value`` (bytes) as a parameter for a binary column."""
        return value


def _plain_bytes(value):
    # Drivers give binary columns back as memoryview (py3 psycopg2), buffer (py2) or bytes.
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value) if not six.PY2 else str(value)


def _text(value):
    if isinstance(value, bytes) and not six.PY2:
        return value.decode('utf-8')
    return value


class SQLAccount(TotoAccount):
    """Account properties: the columns of the session's row in ``account``."""

    def __init__(self, session):
        super(SQLAccount, self).__init__(session)
        self._properties['account_id'] = session.account_id

    def _load_property(self, *keys):
        keys = [key for key in keys if key != 'account_id']
        if not keys:
            return {}
        connection = self._session._connection
        columns = connection._checked_columns(keys)
        row = connection._read('get', 'select %s from account where account_id = %%s'
                               % ', '.join(columns), connection._account_id(
                                   self._session.account_id))
        return dict(row) if row else {}

    def _save_property(self, *keys):
        keys = [key for key in keys if key != 'account_id']
        if not keys:
            return
        connection = self._session._connection
        columns = connection._checked_columns(keys)
        connection._write('update account set %s where account_id = %%s'
                          % ', '.join('%s = %%s' % column for column in columns),
                          *([self._properties[key] for key in keys]
                            + [connection._account_id(self._session.account_id)]))

    def __setitem__(self, key, value):
        # account_id is the driver's: ignored, as in 1.0.12.
        if key != 'account_id':
            super(SQLAccount, self).__setitem__(key, value)


class SQLSession(TotoSession):
    """A row of ``session``; ``account_id`` is None for an anonymous session."""

    _account = None
    _connection = None
    account_class = SQLAccount

    def __init__(self, db, session_data, session_cache=None):
        super(SQLSession, self).__init__(db, session_data, session_cache)
        self.account_id = session_data.get('account_id')

    def get_account(self, *args):
        if not self._account:
            self._account = self.account_class(self)
        return self._account

    def session_data(self):
        data = super(SQLSession, self).session_data()
        data['account_id'] = self.account_id
        return data

    def refresh(self):
        session_data = self._refresh_cache() or self._connection._load_uncached_data(
            self.session_id)
        if not session_data:
            raise TotoException(ERROR_INVALID_SESSION_ID, 'Invalid session ID.')
        SQLSession.__init__(self, self._db, session_data, self._session_cache)
        self._account = None

    def save(self):
        if not self._save_cache():
            connection = self._connection
            connection._write('update session set state = %s where session_id = %s',
                              connection.dialect.binary(TotoSession.dumps(self.state)),
                              self.session_id)


class SQLConnection(DBConnection):
    """Accounts in ``account``, sessions in ``session``; ``db`` is what applications get.

    ``uuid_account_id`` makes account ids ``binary(16)`` uuid4 bytes (MySQL, 1.0.12's
    ``--mysql_uuid_account_id``). ``schema_upgrade`` lets the start alter 1.0.12's
    ``session`` table (see the module docstring). The rest goes to ``DBConnection``.
    """

    session_class = SQLSession

    def __init__(self, db, dialect, uuid_account_id=False, schema_upgrade=True, *args,
                 **kwargs):
        super(SQLConnection, self).__init__(*args, **kwargs)
        self.db = db
        self.dialect = dialect
        self.uuid_account_id = uuid_account_id
        self._schema_upgrade = schema_upgrade
        self._account_columns = frozenset()
        self._keeps_key = self._allows_anonymous = False
        self._password_width = None
        self.create_tables()

    # -- which handle this thread uses -------------------------------------------------

    def _sql(self):
        """The handle the calling thread uses (drivers whose handle is not thread-safe
        override it)."""
        return self.db

    def _read(self, method, sql, *parameters):
        # Reads are safe to repeat: one more try on a fresh connection when the first met
        # a connection that had gone away (a restarted server, an idle connection cut).
        # A server that is still down reaches the caller as TotoException(ERROR_SERVER,
        # 'database <name> unavailable: ...'), not as the client library's exception.
        with translated(self.dialect.name):
            try:
                return getattr(self._sql(), method)(sql, *parameters)
            except self.dialect.connection_errors as error:
                logger.info('database %s: %s; trying again on a new connection',
                            self.dialect.name, ' '.join(str(error).split()))
                return getattr(self._sql(), method)(sql, *parameters)

    def _write(self, sql, *parameters):
        # Sign-ins of one user at once delete that user's expired sessions and insert new
        # ones side by side; InnoDB can pick one of those statements to break a deadlock
        # (gap locks). The statement was rolled back whole: run it again.
        with translated(self.dialect.name):
            for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
                try:
                    return self._sql().execute(sql, *parameters)
                except Exception as error:
                    if attempt == _DEADLOCK_ATTEMPTS or not self.dialect.is_deadlock(error):
                        raise
                    logger.info('database %s: %s; running the statement again',
                                self.dialect.name, ' '.join(str(error).split()))

    def _account_id(self, account_id):
        if self.uuid_account_id and account_id is not None:
            return self.dialect.binary(_plain_bytes(account_id))
        return account_id

    # -- the tables --------------------------------------------------------------------

    def create_tables(self, *args):
        """Create the tables that are missing and, if allowed, upgrade 1.0.12's ``session``."""
        if not self._columns('account'):
            for statement in self.dialect.account_table(self.uuid_account_id):
                self._write(statement)
            logger.info('database %s: created table account', self.dialect.name)
        if not self._columns('session'):
            for statement in self.dialect.session_table(self.uuid_account_id):
                self._write(statement)
            logger.info('database %s: created table session', self.dialect.name)
        self._inspect_tables()
        if self._schema_upgrade:
            self._upgrade_tables()
        else:
            missing = [what for what, present in (
                ('session keys are not kept (no session.session_key)', self._keeps_key),
                ('anonymous sessions are refused (session.account_id is not null)',
                 self._allows_anonymous)) if not present]
            if missing:
                logger.warning('database %s: tables of Toto 1.0.12 and no schema upgrade: %s',
                               self.dialect.name, '; '.join(missing))

    def _columns(self, table):
        rows = self._read('query', self.dialect.columns_query(), table)
        return dict((_text(row['name']).lower(), row) for row in rows)

    def _inspect_tables(self):
        account = self._columns('account')
        session = self._columns('session')
        self._account_columns = frozenset(account)
        self._keeps_key = 'session_key' in session
        self._allows_anonymous = _text(session['account_id']['nullable']) == 'YES'
        width = account['password']['width']
        self._password_width = int(width) if width else None

    def _upgrade_tables(self):
        changes = []
        if not self._keeps_key:
            changes.append(('added column session.session_key (the HMAC key of a session)',
                            self.dialect.add_session_key()))
        if not self._allows_anonymous:
            account_id_type = _text(self._columns('session')['account_id']['column_type'])
            changes.append(('made session.account_id nullable (anonymous sessions)',
                            self.dialect.allow_anonymous(account_id_type)))
        if self._password_width is not None and self._password_width < PASSWORD_WIDTH:
            changes.append(('widened account.password to varchar(%d) (hashes of more than '
                            '400 iterations)' % PASSWORD_WIDTH, self.dialect.widen_password()))
        for description, statement in changes:
            try:
                self._write(statement)
            except Exception as error:
                # Another process starting at the same time may have made the change.
                self._inspect_tables()
                logger.info('database %s: %s failed (%s); checking the table again',
                            self.dialect.name, statement, error)
                continue
            logger.warning('database %s: upgraded 1.0.12 table: %s', self.dialect.name,
                           description)
        if changes:
            self._inspect_tables()

    def _checked_columns(self, names):
        """``names`` if all are columns of ``account``, else a TotoException."""
        names = list(names)
        bad = [name for name in names if not isinstance(name, six.string_types)
               or not _IDENTIFIER.match(name)]
        if not bad:
            unknown = [name for name in names if name.lower() not in self._account_columns]
            if unknown:
                # An application may have added columns since the start: look again once.
                self._account_columns = frozenset(self._columns('account'))
                bad = [name for name in unknown if name.lower() not in self._account_columns]
        if bad:
            raise TotoException(ERROR_SERVER, 'Unknown account field: %s'
                                % ', '.join(repr(name) for name in bad))
        return names

    def _check_password_width(self, hashed_password):
        if self._password_width is not None and len(hashed_password) > self._password_width:
            raise TotoException(ERROR_SERVER, 'database %s: account.password is %d characters '
                                'wide, the hash needs %d (start once with '
                                '--database_schema_upgrade, or use --password_hash_legacy)'
                                % (self.dialect.name, self._password_width,
                                   len(hashed_password)))

    # -- accounts ----------------------------------------------------------------------

    def _get_account(self, user_id):
        return self._read('get', 'select account_id, password from account where user_id = %s',
                          user_id)

    def _store_account(self, user_id, values):
        values = dict(values)
        if self.uuid_account_id:
            values['account_id'] = uuid4().bytes
        if 'account_id' in values:
            values['account_id'] = self._account_id(values['account_id'])
        self._check_password_width(values['password'])
        columns = self._checked_columns(sorted(values))
        try:
            self._write('insert into account (%s) values (%s)' % (
                ', '.join(columns), ', '.join(['%s'] * len(columns))),
                *[values[column] for column in columns])
        except self.dialect.integrity_error as error:
            # Two creates of the same id at once: the unique key decides.
            if self._get_account(user_id):
                raise TotoException(ERROR_USER_ID_EXISTS, 'User ID already in use.')
            raise error

    def _update_password(self, user_id, account, hashed_password):
        self._check_password_width(hashed_password)
        self._write('update account set password = %s where account_id = %s', hashed_password,
                    self._account_id(account['account_id']))

    # -- sessions ----------------------------------------------------------------------

    def _prepare_session(self, account, session_data):
        session_data['account_id'] = account['account_id'] if account else None

    def _store_session(self, session_id, session_data):
        account_id = self._account_id(session_data.get('account_id'))
        if account_id is None and not self._allows_anonymous:
            raise TotoException(ERROR_SERVER, 'database %s: anonymous sessions need '
                                'session.account_id to allow NULL (start once with '
                                '--database_schema_upgrade)' % self.dialect.name)
        now = time.time()
        if self.expire_sessions:
            if account_id is None:
                self._write('delete from session where expires <= %s and account_id is null',
                            now)
            else:
                self._write('delete from session where account_id = %s and expires <= %s',
                            account_id, now)
        columns = ['account_id', 'expires', 'session_id', 'state']
        values = [account_id, session_data['expires'], session_id, None]
        state = session_data.get('state')
        if state:
            values[3] = self.dialect.binary(state)
        if self._keeps_key:
            columns.append('session_key')
            values.append(session_data.get('key'))
        self._write('insert into session (%s) values (%s)' % (
            ', '.join(columns), ', '.join(['%s'] * len(columns))), *values)

    def _load_uncached_data(self, session_id):
        key_column = ', session.session_key' if self._keeps_key else ''
        sql = ('select session.session_id, session.expires, session.state%s, '
               'account.user_id, session.account_id from session left join account on '
               'account.account_id = session.account_id where session.session_id = %%s'
               % key_column)
        parameters = [session_id]
        if self.expire_sessions:
            sql += ' and session.expires > %s'
            parameters.append(time.time())
        row = self._read('get', sql, *parameters)
        if not row:
            return None
        session_data = {
            'session_id': _text(row['session_id']),
            'expires': float(row['expires']),
            'state': _plain_bytes(row['state']),
            'user_id': _text(row['user_id']) or '',
            'account_id': row['account_id'],
        }
        if self.uuid_account_id:
            session_data['account_id'] = _plain_bytes(row['account_id'])
        if row.get('session_key'):
            session_data['key'] = _text(row['session_key'])
        if session_data['account_id'] is not None and not session_data['user_id']:
            return None  # the account was deleted: 1.0.12's inner join found nothing either
        return session_data

    def _update_expiry(self, session_id, session_data):
        self._write('update session set expires = %s where session_id = %s',
                    session_data['expires'], session_id)

    def _remove_session(self, session_id):
        self._write('delete from session where session_id = %s', session_id)

    def _instantiate_session(self, session_data, session_cache):
        try:
            session = self.session_class(self.db, session_data, session_cache)
        except Exception as error:
            if not session_data.get('state'):
                raise
            # A state that does not load (written by other code, damaged) must not make
            # every request with this session fail: it counts as no session.
            logger.error('database %s: session %s: its state does not load (%s: %s); '
                         'treated as no session', self.dialect.name,
                         session_data.get('session_id'), type(error).__name__, error)
            return None
        session._connection = self
        return session

    def clear_sessions(self, user_id):
        """End every session of ``user_id``."""
        self._write(self.dialect.clear_sessions(), (user_id or '').lower())


class ThreadLocalHandles(object):
    """One handle per thread, made by ``factory``; the creating thread uses ``first``.

    For handles that are not thread-safe (PyMySQL connections). A thread's handle goes
    (and closes itself) when the thread ends; :meth:`close` closes those still alive.
    """

    def __init__(self, first, factory):
        self._first = first
        self._owner = threading.current_thread()
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made = weakref.WeakSet()

    def get(self):
        if threading.current_thread() is self._owner:
            return self._first
        handle = getattr(self._local, 'handle', None)
        if handle is None:
            handle = self._local.handle = self._factory()
            with self._lock:
                self._made.add(handle)
        return handle

    def close(self):
        with self._lock:
            made = list(self._made)
            self._made.clear()
        for handle in made:
            handle.close()
