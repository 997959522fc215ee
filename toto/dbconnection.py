"""Accounts and sessions in a database: the base every driver builds on, and the options.

:class:`DBConnection` holds the account and session logic (password checks, session lifetimes
and renewal, session caches); a driver subclass only says how records are read and written.
``configured_connection()`` makes the connection the ``--database`` option names; servers and
workers call it once per process and pass the result to handlers as ``db_connection``::

    from toto.dbconnection import configured_connection

    db_connection = configured_connection()       # --database=json --db_host=store.json
    db_connection.create_account('alice', 'secret', nickname='al')
    session = db_connection.create_session('Alice', 'secret')   # user ids are lowercased
    same = db_connection.retrieve_session(session.session_id)   # None once it has expired

Drivers: ``none`` (:class:`toto.fakeconnection.FakeConnection`, no storage), ``json``
(:class:`toto.jsondbconnection.JSONConnection`), and Toto 1.0.12's four databases, each with
its client library as a pip extra: ``mongodb`` (``toto.mongodbconnection``, pymongo),
``redis`` (``toto.redisconnection``, redis-py), ``mysql`` (``toto.mysqldbconnection``, PyMySQL)
and ``postgres`` (``toto.postgresconnection``, psycopg2). They take 1.0.12's options
(``--db_host``, ``--db_port`` or the database's usual port, ``--mysql_database`` and the
like); ``--database_timeout`` bounds each database call (connecting included) and
``--database_schema_upgrade=false`` keeps SQL tables exactly as 1.0.12 made them.
:func:`check_configured_database` connects once before a service starts its processes, so a
missing library, a wrong address or a server that is down stops the start with one line
(:class:`DatabaseUnavailable`); a driver this release does not have says so the same way.

Session lifetimes: a session lasts ``session_ttl`` seconds (``anon_session_ttl`` when
anonymous). Each lookup moves its end to now + ``session_renew`` (``anon_session_renew``) if
that is later than the current end; a renew of 0 means the ttl, so every lookup slides the end
to now + ttl. A lookup after the end finds nothing. Toto 1.0.12's base class never looked at
the end (its JSON driver kept sessions forever); to keep that, pass ``expire_sessions=False``
to a connection or set ``DBConnection.expire_sessions = False`` for all of them.
"""

from __future__ import absolute_import, division, print_function

import importlib
import logging
import random
import string
import time

import six
from tornado.options import define, options

import toto.secret as secret
from toto.exceptions import ERROR_INVALID_USER_ID, ERROR_USER_ID_EXISTS, ERROR_USER_NOT_FOUND
from toto.exceptions import TotoException
from toto.session import *  # noqa: F401 -- 1.0.12 made the session names reachable here
from toto.session import TotoSession
from toto.session import __all__ as _session_names

__all__ = ['DBConnection', 'DatabaseUnavailable', 'check_configured_database',
           'configured_connection'] + list(_session_names)

logger = logging.getLogger('toto.dbconnection')

_PASSWORD_CHARACTERS = string.ascii_letters + string.digits
_PASSWORD_LENGTH = 10
_system_random = random.SystemRandom()


class DatabaseUnavailable(ValueError):
    """``--database`` names a database this release cannot connect to.

    A ValueError, as the services' other option mistakes are: ``toto-worker``
    prints its one-line message and exits with status 2.
    """


class DBConnection(object):
    """Account and session storage; drivers subclass it and implement the ``_`` hooks.

    ``session_ttl`` / ``anon_session_ttl`` are session lifetimes in seconds and
    ``session_renew`` / ``anon_session_renew`` how close to its end a session is extended
    (see the module docstring); 0 or None means "the ttl". The keyword ``expire_sessions``
    (default: the class attribute, True) makes lookups ignore sessions that have ended.
    Drivers give direct access to their database as ``self.db``.
    """

    _session_cache = None
    #: Lookups find nothing once ``expires`` has passed (False: 1.0.12, never checked).
    expire_sessions = True

    def __init__(self, session_ttl=24 * 60 * 60 * 365, anon_session_ttl=24 * 60 * 60,
                 session_renew=0, anon_session_renew=0, *args, **kwargs):
        # A keyword argument rather than a parameter: Python 2 has no keyword-only parameters
        # and drivers pass their own positional arguments through *args. Without it the class
        # attribute decides, so `DBConnection.expire_sessions = False` covers every connection.
        if 'expire_sessions' in kwargs:
            self.expire_sessions = bool(kwargs.pop('expire_sessions'))
        self.session_ttl = session_ttl
        self.anon_session_ttl = anon_session_ttl or self.session_ttl
        self.session_renew = session_renew or self.session_ttl
        self.anon_session_renew = anon_session_renew or self.anon_session_ttl

    # -- accounts ----------------------------------------------------------------------

    def create_account(self, user_id, password, additional_values={}, **values):
        """Create the account ``user_id`` (lowercased) with ``password`` and other fields.

        Fields come from the keywords (``additional_values`` is the older spelling). Raises
        ``TotoException`` with ``ERROR_INVALID_USER_ID`` for an empty id (or one that is not
        text) and ``ERROR_USER_ID_EXISTS`` when the id is taken.
        """
        if not user_id or not isinstance(user_id, six.string_types):
            raise TotoException(ERROR_INVALID_USER_ID, 'Invalid user ID.')
        if self._find_account(user_id):
            raise TotoException(ERROR_USER_ID_EXISTS, 'User ID already in use.')
        user_id = self._new_user_id(user_id)
        values.update(additional_values)
        values['user_id'] = user_id
        values['password'] = secret.password_hash(password)
        self._store_account(user_id, values)

    def change_password(self, user_id, password, new_password):
        """Replace the password of ``user_id`` after checking the current one.

        Raises ``TotoException(ERROR_USER_NOT_FOUND)`` for an unknown id or a wrong password.
        """
        account = self._find_account(user_id)
        if not account or not self._password_matches(password, account):
            raise TotoException(ERROR_USER_NOT_FOUND, 'Invalid user ID or password')
        self._update_password(self._account_user_id(user_id, account), account,
                              secret.password_hash(new_password))

    def generate_password(self, user_id):
        """Give ``user_id`` a new random password (10 letters and digits) and return it.

        For "forgot my password". Raises ``TotoException(ERROR_USER_NOT_FOUND)`` for an
        unknown id.
        """
        account = self._find_account(user_id)
        if not account:
            raise TotoException(ERROR_USER_NOT_FOUND, 'Invalid user ID')
        new_password = ''.join(_system_random.choice(_PASSWORD_CHARACTERS)
                               for _ in range(_PASSWORD_LENGTH))
        self._update_password(self._account_user_id(user_id, account), account,
                              secret.password_hash(new_password))
        return new_password

    # -- sessions ----------------------------------------------------------------------

    def create_session(self, user_id=None, password=None, verify_password=True, key=None):
        """Start a session for ``user_id`` or, without a user id, an anonymous one.

        The password is checked unless ``verify_password`` is False (for sign-in through
        another service). ``key`` becomes the session's HMAC key. Raises
        ``TotoException(ERROR_USER_NOT_FOUND)`` for an unknown id or a wrong password.
        """
        account = self._find_account(user_id)
        if user_id and (not account or (verify_password
                                        and not self._password_matches(password, account))):
            raise TotoException(ERROR_USER_NOT_FOUND, 'Invalid user ID or password')
        user_id = self._account_user_id(user_id, account) if account else ''
        session_id = TotoSession.generate_id()
        # and/or as in 1.0.12: a session_ttl of 0 falls back to anon_session_ttl.
        expires = time.time() + (user_id and self.session_ttl or self.anon_session_ttl)
        session_data = {'user_id': user_id, 'expires': expires, 'session_id': session_id}
        if key:
            session_data['key'] = key
        self._prepare_session(account, session_data)
        if not self._cache_session_data(session_data):
            self._store_session(session_id, session_data)
        return self._instantiate_session(session_data, self._session_cache)

    def retrieve_session(self, session_id):
        """The session ``session_id``, renewed as configured, or None.

        None when there is no such session or (with ``expire_sessions``) it has ended.
        """
        if not session_id:
            return None
        session_data = self._load_session_data(session_id)
        if not session_data:
            return None
        now = time.time()
        if self.expire_sessions and session_data['expires'] <= now:
            logger.debug('session %s has expired', session_id)
            return None
        user_id = session_data['user_id']
        renewed_expires = now + (user_id and self.session_renew or self.anon_session_renew)
        if session_data['expires'] < renewed_expires:
            session_data['expires'] = renewed_expires
            if not self._cache_session_data(session_data):
                self._update_expiry(session_id, session_data)
        return self._instantiate_session(session_data, self._session_cache)

    def remove_session(self, session_id):
        """End the session ``session_id`` (through the session cache if there is one)."""
        if self._session_cache:
            self._session_cache.remove_session(session_id)
        else:
            self._remove_session(session_id)

    def clear_sessions(self, user_id):
        """End every session of ``user_id``, where the driver can; the base does nothing."""

    def set_session_cache(self, session_cache):
        """Keep sessions in ``session_cache`` (a ``TotoSessionCache``) instead of the database."""
        self._session_cache = session_cache

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _password_matches(password, account):
        # No password never matches (1.0.12 hashed None and failed with a TypeError).
        return password is not None and secret.verify_password(password, account['password'])

    def _load_session_data(self, session_id):
        # The session cache's copy when there is a cache, else the database's.
        if self._session_cache:
            return self._session_cache.load_session(session_id)
        return self._load_uncached_data(session_id)

    def _cache_session_data(self, session_data):
        # True when a session cache stored the session; the cache may give it a new id.
        if self._session_cache:
            new_session_id = self._session_cache.store_session(session_data)
            if new_session_id:
                session_data['session_id'] = new_session_id
            return True
        return False

    # -- driver hooks ------------------------------------------------------------------

    def _load_uncached_data(self, session_id):
        """The stored session data dict of ``session_id``, or None (no session cache in use)."""
        raise NotImplementedError()

    def _store_session(self, session_id, session_data):
        """Store a new session (no session cache in use)."""
        raise NotImplementedError()

    def _update_expiry(self, session_id, session_data):
        """Store a renewed ``expires``; the default stores the whole session again."""
        return self._store_session(session_id, session_data)

    def _remove_session(self, session_id):
        """Delete a session (no session cache in use)."""
        raise NotImplementedError()

    def _instantiate_session(self, session_data, session_cache):
        """A new instance of the driver's ``TotoSession`` subclass."""
        raise NotImplementedError()

    def _get_account(self, user_id):
        """The account of ``user_id`` as a dict with at least ``password`` (the hash), or None."""
        raise NotImplementedError()

    def _find_account(self, user_id):
        """The account a client's ``user_id`` names, or None; accounts are kept lowercased.

        Only text names an account: anything else a request body carries is no account.
        """
        if not user_id or not isinstance(user_id, six.string_types):
            return None
        return self._get_account(user_id.lower())

    def _new_user_id(self, user_id):
        """The id a new account for ``user_id`` is stored under."""
        return user_id.lower()

    def _account_user_id(self, user_id, account):
        """The stored id of ``account``, which a client named ``user_id``."""
        return user_id.lower()

    def _prepare_session(self, account, session_data):
        """Add what the driver's session needs to ``session_data`` before it is stored."""

    def _store_account(self, user_id, values):
        """Store a new account; ``values`` has ``user_id``, the hashed ``password`` and more."""
        raise NotImplementedError()

    def _update_password(self, user_id, account, hashed_password):
        """Store a new password hash; ``account`` is what :meth:`_get_account` returned."""
        raise NotImplementedError()


# The options and their types and defaults are those of Toto 1.0.12, defined with
# tornado's define as there, so existing command lines and conf files keep working.
define('database', type=str, default='none', metavar='mysql|mongodb|redis|postgres|json|none',
       help='The database for accounts and sessions')
define('db_host', type=str, default='localhost',
       help='The database host (json: the file name, empty for memory only)')
define('db_port', type=int, default=0,
       help='The database port, 0 for the database default (json: non-zero to write the file)')
define('mysql_database', type=str, help='MySQL schema name')
define('mysql_user', type=str, help='MySQL user')
define('mysql_password', type=str, help='MySQL password')
define('mysql_uuid_account_id', type=bool, default=False,
       help='MySQL account ids are binary(16) uuid4s instead of auto-increment integers')
define('postgres_database', type=str, help='Postgres database name')
define('postgres_user', type=str, help='Postgres user')
define('postgres_password', type=str, help='Postgres password')
define('postgres_min_connections', type=int, default=1,
       help='Postgres connections the pool keeps open')
define('postgres_max_connections', type=int, default=100,
       help='Most Postgres connections in the pool')
define('mongodb_database', type=str, default='toto_server', help='MongoDB database name')
define('redis_database', type=int, default=0, help='Redis database number')
define('session_ttl', type=int, default=24 * 60 * 60 * 365,
       help='Seconds a session lasts after it is created')
define('anon_session_ttl', type=int, default=24 * 60 * 60,
       help='Seconds an anonymous session lasts after it is created')
define('session_renew', type=int, default=0,
       help='Extend a session used within this many seconds of its end (0: on every use)')
define('anon_session_renew', type=int, default=0,
       help='Extend an anonymous session used within this many seconds of its end '
            '(0: on every use)')
# New in toto-compat (1.0.12 had no limit: a database that hung, hung the server).
define('database_timeout', type=float, default=10.0,
       help='Seconds a database call of the drivers may take before the request fails '
            '(also their connect and socket timeouts)')
define('database_threads', type=int, default=4,
       help='Threads that run the database work of accounts and sessions off the IOLoop '
            '(0: on the IOLoop, as 1.0.12 did)')
define('database_schema_upgrade', type=bool, default=True,
       help='Let the SQL drivers add what sessions need to tables 1.0.12 made (never drops '
            'anything); false keeps them as they are')


def _session_settings():
    return dict(session_ttl=options.session_ttl, anon_session_ttl=options.anon_session_ttl,
                session_renew=options.session_renew,
                anon_session_renew=options.anon_session_renew)


def _fake_connection():
    from toto.fakeconnection import FakeConnection
    return FakeConnection(**_session_settings())


def _json_connection():
    from toto.jsondbconnection import JSONConnection
    from toto.tasks import InstancePool
    # As in 1.0.12: db_host is the file and db_port the "write the file" flag, and the pool
    # (so handler.db is the pool's function for the attribute, as it was).
    return InstancePool(JSONConnection(options.db_host, options.db_port, **_session_settings()))


def _check_json_file():
    # Imported here: the services' options (--processes) are theirs to define.
    from toto.service import process_count
    processes = process_count()
    if options.db_host and options.db_port and processes > 1:
        # Each process reads the file once and writes its own copy after each change.
        logger.warning('database json: each of the %d processes keeps its own copy of %s '
                       'and writes it after every change: what one process writes, the next '
                       'write of another overwrites (run one process, or another database)',
                       processes, options.db_host)
    # Without the "write the file" flag (--db_port) the file must be there to be read.
    if not options.db_host or options.db_port:
        return
    try:
        with open(options.db_host, 'rb'):
            pass
    except (IOError, OSError) as error:
        raise DatabaseUnavailable('database json: cannot read --db_host %s (%s); '
                                  '--db_port=1 makes the file, and writes every change to it'
                                  % (options.db_host, error.strerror or error))


# The driver modules, by --database value (1.0.12's module names). Each has
# connection_from_options() and check_from_options(); they are imported when chosen, so their
# client libraries are only needed by those who use them.
_DRIVER_MODULES = {
    'mongodb': 'toto.mongodbconnection',
    'mysql': 'toto.mysqldbconnection',
    'postgres': 'toto.postgresconnection',
    'redis': 'toto.redisconnection',
}


def _driver_module(name):
    module_name = _DRIVER_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        # Only the driver module's own absence means "not in this release"; an ImportError
        # from inside it (a library it needs) is the driver's to explain, so it goes on.
        missing = getattr(error, 'name', None) or str(error).rsplit(' ', 1)[-1]
        if missing not in (module_name, module_name.rsplit('.', 1)[-1]):
            raise
        module = None
    if module is None or not hasattr(module, 'connection_from_options'):
        raise DatabaseUnavailable('database %r is not available in this release of toto yet'
                                  % (name,))
    return module


def _driver_connection(name):
    return lambda: _driver_module(name).connection_from_options()


def _driver_check(name):
    return lambda: _driver_module(name).check_from_options()


# --database value -> what checks, in the parent, that the processes can open it.
_START_CHECKS = {
    'json': _check_json_file,
}
# --database value -> function making the connection; drivers are imported when chosen.
_DRIVERS = {
    'none': _fake_connection,
    'json': _json_connection,
}
for _name in _DRIVER_MODULES:
    _START_CHECKS[_name] = _driver_check(_name)
    _DRIVERS[_name] = _driver_connection(_name)
del _name
# Databases of Toto 1.0.12 whose drivers come in a later release of this package (none now:
# a driver module that is missing says so itself).
_NOT_YET_AVAILABLE = ()


def check_configured_database():
    """Raise :class:`DatabaseUnavailable` unless ``--database`` names a driver this release has.

    Services call it in their parent process, before any process starts, so a
    database they cannot use stops the start with one line.
    """
    name = options.database
    if name in _DRIVERS:
        check = _START_CHECKS.get(name)
        if check is not None:
            check()
        return
    if name in _NOT_YET_AVAILABLE:
        raise DatabaseUnavailable('database %r is not available in this release of toto yet'
                                  % (name,))
    raise DatabaseUnavailable('unknown database %r: choose one of %s' % (
        name, ', '.join(sorted(set(_DRIVERS) | set(_NOT_YET_AVAILABLE)))))


def configured_connection(fallback_to_fake=False):
    """A new connection to the database the options name (``--database`` and the rest).

    Raises :class:`DatabaseUnavailable` for a database this release has no driver for, and
    for an unknown name; ``fallback_to_fake=True`` gives a ``FakeConnection`` for an unknown
    name instead, as Toto 1.0.12 did.
    """
    name = options.database
    factory = _DRIVERS.get(name)
    if factory is not None:
        return factory()
    if name in _NOT_YET_AVAILABLE:
        raise DatabaseUnavailable('database %r is not available in this release of toto yet'
                                  % (name,))
    if fallback_to_fake:
        logger.warning('unknown database %r: using no database (none)', name)
        return _fake_connection()
    raise DatabaseUnavailable('unknown database %r: choose one of %s' % (
        name, ', '.join(sorted(set(_DRIVERS) | set(_NOT_YET_AVAILABLE)))))
