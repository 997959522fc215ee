"""The ``--database=redis`` driver, and a Redis session cache for any other database.

Accounts are Redis hashes ``account:<user_id>`` (``user_id``, ``password`` -- the ``$p5k2$``
hash --, the other create fields and the account properties). A session is the string
``session:<session_id>``: the session data dict (``user_id``, ``expires``, ``session_id``,
``key`` and ``state``, itself serialized) serialized with :meth:`TotoSession.dumps` (a protocol 0
pickle by default), stored with ``SETEX`` so that Redis drops it when it ends. That is the
layout of Toto 1.0.12's :class:`RedisSessionCache`, so sessions move freely between the two::

    from toto.redisconnection import RedisConnection, RedisSessionCache

    connection = RedisConnection('localhost', 6379, 0, session_ttl=3600)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    connection.db.incr('visits')          # .db is the redis.StrictRedis client

    # sessions in Redis, accounts elsewhere (e.g. MySQL):
    mysql_connection.set_session_cache(RedisSessionCache(redis.StrictRedis()))

``--database=redis`` makes ``RedisConnection(--db_host, --db_port or 6379,
--redis_database)`` with the session options; every command waits at most
``--database_timeout`` seconds. Needs redis-py (``pip install 'toto-compat[redis]'``): 3.5 on
Python 2.7, 4.1 or later on Python 3.
"""

from __future__ import absolute_import, division, print_function

import functools
import logging
import numbers
import time

import six

from toto._dboffload import database_timeout, import_driver, translated
from toto.dbconnection import DatabaseUnavailable, DBConnection, _session_settings
from toto.exceptions import ERROR_INVALID_SESSION_ID, ERROR_USER_ID_EXISTS, TotoException
from toto.session import TotoAccount, TotoSession, TotoSessionCache

__all__ = ['RedisConnection', 'RedisSession', 'RedisSessionCache', 'check_from_options',
           'connection_from_options']

logger = logging.getLogger('toto.redisconnection')

DEFAULT_PORT = 6379
#: Seconds the start check may take to connect and PING.
_CHECK_TIMEOUT = 5.0
_SESSION_FIELDS = ('user_id', 'expires', 'session_id')


def _account_key(user_id):
    return 'account:%s' % (user_id,)


def _session_key(session_id):
    return 'session:%s' % (session_id,)


def _ttl(expires):
    # SETEX wants a positive whole number of seconds; a session that ends within the second
    # (or has ended: 1.0.12 then failed with "invalid expire time") lives one more second.
    return max(1, int(float(expires) - time.time()))


def _text(value):
    # redis-py gives bytes on Python 3 (no decode_responses, as 1.0.12 made its client).
    if isinstance(value, bytes) and not six.PY2:
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            return value
    return value


def _storable(value):
    # redis-py 3 and later only take bytes, text and numbers; redis-py 2, which 1.0.12 used,
    # wrote anything else as its str(), so None became "None". Keep writing that.
    if isinstance(value, (bytes, six.text_type)) or (
            isinstance(value, numbers.Number) and not isinstance(value, bool)):
        return value
    return str(value)


def _native_state(session_data):
    # A session Python 2 wrote holds its serialized state as a Python 2 str, which loads on
    # Python 3 as text with surrogate escapes: encode it back to the very same bytes.
    state = session_data.get('state')
    if not six.PY2 and isinstance(state, six.text_type):
        session_data['state'] = state.encode('utf-8', 'surrogateescape')
    return session_data


def _load_session_data(raw, session_id):
    """The session data dict stored in ``raw``, or None when it is not one (logged)."""
    if not raw:
        return None
    try:
        data = TotoSession.loads(raw)
    except Exception as error:
        # Redis is the application's own store, but a damaged value must not break every
        # request that carries its id: the session is treated as gone.
        logger.error('session %s: stored data does not load (%s: %s); ignored', session_id,
                     type(error).__name__, error)
        return None
    if not isinstance(data, dict) or any(name not in data for name in _SESSION_FIELDS) \
            or not isinstance(data['expires'], numbers.Real):
        logger.error('session %s: stored data is not a session (%s); ignored', session_id,
                     type(data).__name__)
        return None
    return _native_state(data)


def _client(redis, host, port, database, timeout):
    # One retry, at once, and only when the connection broke: a pooled connection to a server
    # that restarted fails once, then a new one works. No retry after a timeout, so a server
    # that hangs costs one timeout (redis-py 6+ retries three times with backoff by default).
    # redis-py 3.5 (Python 2.7) does exactly that without being told.
    kwargs = dict(host=host, port=port, db=database or 0, socket_timeout=timeout,
                  socket_connect_timeout=timeout)
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        pass
    else:
        kwargs['retry'] = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
        kwargs['retry_on_error'] = [redis.ConnectionError]  # redis-py 4 retries only these
    return redis.StrictRedis(**kwargs)


def _outage_as_toto_error(method):
    # A server that cannot be reached becomes TotoException(ERROR_SERVER, 'database redis
    # unavailable: ...') for the client; other Redis errors pass unchanged.
    @functools.wraps(method)
    def guarded(*args, **kwargs):
        with translated('redis'):
            return method(*args, **kwargs)
    return guarded


class RedisSessionCache(TotoSessionCache):
    """Sessions in Redis as ``session:<session_id>`` (Toto 1.0.12's layout), for any driver.

    ``db`` is a ``redis.StrictRedis`` (``redis.Redis``) client of the database to use; its
    responses must not be decoded (no ``decode_responses``).
    """

    blocking = True
    def __init__(self, db):
        self.db = db

    def store_session(self, session_data):
        self.db.setex(_session_key(session_data['session_id']), _ttl(session_data['expires']),
                      TotoSession.dumps(session_data))

    def load_session(self, session_id):
        return _load_session_data(self.db.get(_session_key(session_id)), session_id)

    def remove_session(self, session_id):
        self.db.delete(_session_key(session_id))


class RedisAccount(TotoAccount):
    """Account properties, as fields of the account's hash ``account:<user_id>``."""

    @_outage_as_toto_error
    def _load_property(self, *keys):
        if not keys:
            return {}
        values = self._session._db.hmget(_account_key(self._session.user_id), list(keys))
        return dict((key, _text(value)) for key, value in zip(keys, values)
                    if value is not None)

    @_outage_as_toto_error
    def _save_property(self, *keys):
        if not keys:
            return
        self._session._db.hset(_account_key(self._session.user_id), mapping=dict(
            (key, _storable(self._properties[key])) for key in keys))


class RedisSession(TotoSession):
    """A session stored as ``session:<session_id>``; ``_db`` is the Redis client."""

    _account = None
    RedisAccount = RedisAccount  # 1.0.12 defined it inside the session class

    def get_account(self, *args):
        if not self._account:
            self._account = RedisAccount(self)
        return self._account

    @_outage_as_toto_error
    def refresh(self):
        session_data = self._refresh_cache() or _load_session_data(
            self._db.get(_session_key(self.session_id)), self.session_id)
        if not session_data:
            raise TotoException(ERROR_INVALID_SESSION_ID, 'Invalid session ID.')
        self.__init__(self._db, session_data, self._session_cache)

    @_outage_as_toto_error
    def save(self):
        if not self._save_cache():
            # XX: a session ended meanwhile (logout, expiry) is not brought back.
            self._db.set(_session_key(self.session_id), TotoSession.dumps(self.session_data()),
                         ex=_ttl(self.expires), xx=True)


class RedisConnection(DBConnection):
    """Accounts and sessions in Redis database ``database`` at ``host``:``port``.

    Further arguments are those of :class:`~toto.dbconnection.DBConnection` (``session_ttl``
    and the rest); the keyword ``timeout`` (default ``--database_timeout``) limits each
    command and connecting. ``db`` is the ``redis.StrictRedis`` client.
    """

    #: Its calls wait on the network: the framework runs its session work off the IOLoop
    #: (toto._dboffload.run_blocking).
    blocking = True

    def __init__(self, host='localhost', port=DEFAULT_PORT, database=0, *args, **kwargs):
        timeout = kwargs.pop('timeout', None) or database_timeout()
        super(RedisConnection, self).__init__(*args, **kwargs)
        redis = import_driver('redis', 'redis', 'redis')
        self.db = _client(redis, host, port or DEFAULT_PORT, database, timeout)

    # -- accounts ----------------------------------------------------------------------

    @_outage_as_toto_error
    def _get_account(self, user_id):
        stored_user_id, password = self.db.hmget(_account_key(user_id), ['user_id', 'password'])
        if password is None:
            return None
        return {'user_id': _text(stored_user_id), 'password': _text(password)}

    @_outage_as_toto_error
    def _store_account(self, user_id, values):
        key = _account_key(user_id)
        # The password first, and only where there is none: of two creates of the same id at
        # once, one fails instead of both "succeeding" with one password left.
        if not self.db.hsetnx(key, 'password', values['password']):
            raise TotoException(ERROR_USER_ID_EXISTS, 'User ID already in use.')
        others = dict((name, _storable(value)) for name, value in values.items()
                      if name != 'password')
        if others:
            self.db.hset(key, mapping=others)

    @_outage_as_toto_error
    def _update_password(self, user_id, account, hashed_password):
        self.db.hset(_account_key(user_id), 'password', hashed_password)

    # -- sessions ----------------------------------------------------------------------

    @_outage_as_toto_error
    def _store_session(self, session_id, session_data):
        self.db.setex(_session_key(session_id), _ttl(session_data['expires']),
                      TotoSession.dumps(session_data))

    @_outage_as_toto_error
    def _update_expiry(self, session_id, session_data):
        # XX: a renewal racing a logout does not bring the session back.
        self.db.set(_session_key(session_id), TotoSession.dumps(session_data),
                    ex=_ttl(session_data['expires']), xx=True)

    @_outage_as_toto_error
    def _load_uncached_data(self, session_id):
        return _load_session_data(self.db.get(_session_key(session_id)), session_id)

    @_outage_as_toto_error
    def _remove_session(self, session_id):
        self.db.delete(_session_key(session_id))

    def _instantiate_session(self, session_data, session_cache):
        return RedisSession(self.db, session_data, session_cache)

    @_outage_as_toto_error
    def clear_sessions(self, user_id):
        """End every session of ``user_id`` (1.0.12's Redis driver ended none).

        Sessions are keyed by id only, so this reads every ``session:*`` key (SCAN): it costs
        time in proportion to all the sessions stored.
        """
        user_id = (user_id or '').lower()
        if not user_id:
            return
        ended = []
        for key in self.db.scan_iter(match='session:*', count=500):
            data = _load_session_data(self.db.get(key), _text(key))
            if data and data.get('user_id') == user_id:
                ended.append(key)
        if ended:
            self.db.delete(*ended)


def _options():
    from tornado.options import options
    return options


def connection_from_options():
    """``RedisConnection(--db_host, --db_port or 6379, --redis_database)`` and the session
    options."""
    options = _options()
    return RedisConnection(options.db_host, options.db_port or DEFAULT_PORT,
                           options.redis_database, **_session_settings())


def check_from_options():
    """Raise ``DatabaseUnavailable`` (one line) unless the configured Redis answers PING.

    Runs in the parent before the processes start: everything it opens is closed again.
    """
    options = _options()
    redis = import_driver('redis', 'redis', 'redis')
    host, port = options.db_host, options.db_port or DEFAULT_PORT
    timeout = min(_CHECK_TIMEOUT, database_timeout() or _CHECK_TIMEOUT)
    client = _client(redis, host, port, options.redis_database, timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatabaseUnavailable('database redis: cannot connect to %s:%s (redis_database '
                                  '%s): %s' % (host, port, options.redis_database or 0, cause))
    finally:
        client.connection_pool.disconnect()
