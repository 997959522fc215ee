"""The ``--database=mongodb`` connection: accounts and sessions in MongoDB, through pymongo.

The storage is Toto 1.0.12's, so a database it filled keeps working here and the other way
round (``toto_server`` is the default ``--mongodb_database``)::

    accounts: {_id, user_id, password: "$p5k2$...", <every field given to create_account>}
              index "user_id" (not unique)
    sessions: {_id, user_id ("" when anonymous), expires (float, epoch seconds), session_id,
               key (the client's HMAC key, when it sent one), state (protocol 0 pickle, text)}
              indexes "session_id" (unique), "user_id", "expires"

Usage::

    from toto.mongodbconnection import MongoDBConnection

    connection = MongoDBConnection('127.0.0.1', 27017, 'toto_server')
    connection.create_account('alice', 'secret', nickname='al')
    session = connection.create_session('alice', 'secret', key='client-hmac-key')
    connection.db.logs.insert({'event': 'login'})   # pymongo 2 calls work (toto._mongolegacy)

``connection.db`` is a ``pymongo.database.Database`` (pymongo 3.13 on Python 2.7, 4.x on
Python 3) that also has pymongo 2's ``insert``/``update``/``remove``/``save``/... which apps
written for 1.0.12 call on ``handler.db``. ``host`` may also be a ``mongodb://`` URI.

User ids: 1.0.12's MongoDB driver stored them as given and compared them exactly, while every
other driver lowercases them. Here new accounts are stored lowercased, and a lookup tries the
id exactly as given first, then lowercased: an account ``Alice`` made by 1.0.12 still signs in
as ``Alice`` (not as ``alice``, as before), and a new account ``alice`` signs in with any case.
Sessions carry the id as the account stores it. ``MongoDBConnection.lowercase_user_ids =
False`` keeps ids as given, as 1.0.12 did.

Differences from 1.0.12 (which needed pymongo < 3): the session ``key`` is stored (1.0.12
dropped it, and reads it back from our documents); renewal updates ``sessions`` (1.0.12 wrote
to a ``sesions`` collection, so expiry never moved); ``generate_password`` works; writes are
acknowledged (pymongo 2's ``Connection`` did not wait, so failed app writes went unnoticed); a
state that cannot be pickled or stored raises a clear ``TotoException`` (``ERROR_SERVER``); a
stored state that cannot be loaded gives ``TotoException(ERROR_INVALID_SESSION_ID)``, logged.

From the options (``--database=mongodb``), the client waits at most ``--database_timeout``
seconds (10) to find the server, to connect and for each answer: a query of an app that takes
longer now fails with ``pymongo.errors.NetworkTimeout`` (1.0.12 waited forever). When the
server cannot be reached, the driver's own calls (accounts, sessions) raise
``TotoException(ERROR_SERVER, 'database mongodb unavailable: ...')`` and work again once it is
back; pymongo retries a read or write once, so such a call can take twice the timeout.
"""

from __future__ import absolute_import, division, print_function

import functools
import logging
import time

import six
from tornado.options import options

from toto._dboffload import import_driver, translated
from toto.dbconnection import DatabaseUnavailable, DBConnection, _session_settings
from toto.exceptions import ERROR_INVALID_SESSION_ID, ERROR_SERVER, TotoException
from toto.session import TotoAccount, TotoSession

__all__ = ['MongoDBConnection', 'MongoDBSession', 'check_from_options',
           'connection_from_options']

logger = logging.getLogger('toto.mongodbconnection')

DEFAULT_PORT = 27017
# The start check's own limit: it runs in the parent before the processes start.
_CHECK_TIMEOUT = 5.0

_SESSION_INDEXES = (('session_id', True), ('user_id', False), ('expires', False))
_ACCOUNT_INDEXES = (('user_id', False),)


def _client_timeouts(seconds):
    milliseconds = int(seconds * 1000)
    return {'serverSelectionTimeoutMS': milliseconds, 'connectTimeoutMS': milliseconds,
            'socketTimeoutMS': milliseconds}


def _state_for_storage(state):
    # 1.0.12 stored the protocol 0 pickle as a BSON string.
    try:
        data = TotoSession.dumps(state)
    except Exception as error:  # pickle raises PicklingError, TypeError or AttributeError
        raise TotoException(ERROR_SERVER, 'session state cannot be stored: %s: %s'
                            % (type(error).__name__, error))
    return _storable(data)


def _storable(data):
    # The default serializer's output is ASCII, stored as text on both Pythons (pymongo 4
    # would store bytes as BSON binary, pymongo 3.13 on Python 2 a str as a string). Output
    # that is not UTF-8 (another serializer) is stored as BSON binary, which loads back too.
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode('utf-8')
        except UnicodeDecodeError:
            from bson.binary import Binary
            return Binary(bytes(data))
        return bytes(data) if six.PY2 else text
    return data


def _loadable(document):
    # A BSON string holds the UTF-8 encoding of the bytes that were stored: encoding it back
    # gives those bytes (our pickles are ASCII; a 1.0.12 pickle may hold any UTF-8).
    if document is not None and isinstance(document.get('state'), six.text_type):
        document['state'] = document['state'].encode('utf-8')
    return document


def _outage_as_toto_error(method):
    # A server that cannot be reached (pymongo's ConnectionFailure: AutoReconnect, timeouts,
    # no server selected) reaches the client as TotoException(ERROR_SERVER, 'database mongodb
    # unavailable: ...'); the client reconnects by itself once the server is back.
    @functools.wraps(method)
    def guarded(*args, **kwargs):
        with translated('mongodb'):
            return method(*args, **kwargs)
    return guarded


def _storage_error_types():
    from bson.errors import InvalidDocument, InvalidStringData
    from pymongo.errors import DocumentTooLarge
    return (InvalidDocument, InvalidStringData, DocumentTooLarge)


class MongoDBAccount(TotoAccount):
    """Account properties: fields of the account's document in ``accounts``."""

    @_outage_as_toto_error
    def _load_property(self, *keys):
        projection = dict((key, 1) for key in keys) if keys else None
        document = self._session._db.accounts.find_one({'user_id': self._session.user_id},
                                                       projection)
        return document or {}

    @_outage_as_toto_error
    def _save_property(self, *keys):
        if not keys:
            return
        # The values as set (1.0.12 wrote account[key], which turns 0 or '' into None).
        values = dict((key, self._properties.get(key)) for key in keys)
        self._session._db.accounts.update_one({'user_id': self._session.user_id},
                                              {'$set': values})


class MongoDBSession(TotoSession):
    """A session stored in the ``sessions`` collection."""

    _account = None

    def get_account(self, *args):
        if not self._account:
            self._account = MongoDBAccount(self)
        return self._account

    @_outage_as_toto_error
    def refresh(self):
        session_data = self._refresh_cache() or _loadable(self._db.sessions.find_one(
            {'session_id': self.session_id}))
        if not session_data:
            raise TotoException(ERROR_INVALID_SESSION_ID, 'Invalid session ID.')
        self.__init__(self._db, session_data, self._session_cache)

    @_outage_as_toto_error
    def save(self):
        if self._save_cache():
            return
        state = _state_for_storage(self.state)
        try:
            self._db.sessions.update_one({'session_id': self.session_id},
                                         {'$set': {'state': state}})
        except _storage_error_types() as error:
            raise TotoException(ERROR_SERVER, 'session state cannot be stored: %s: %s'
                                % (type(error).__name__, error))


# 1.0.12 defined the account class inside the session class.
MongoDBSession.MongoDBAccount = MongoDBAccount  # type: ignore[attr-defined]


class MongoDBConnection(DBConnection):
    """Accounts and sessions in the MongoDB database ``database`` at ``host``:``port``.

    The session arguments are :class:`~toto.dbconnection.DBConnection`'s (with its
    ``expire_sessions`` keyword); other keywords go to ``pymongo.MongoClient`` (for example
    ``serverSelectionTimeoutMS``). Indexes are created when missing (never changed or
    dropped); if the server cannot be reached they are created on the first write.
    """

    #: New account ids are lowercased, and lookups try the lowercased id after the given one.
    #: False: ids are stored and compared exactly as given, as Toto 1.0.12's driver did.
    lowercase_user_ids = True
    blocking = True

    def __init__(self, host, port, database, session_ttl=24 * 60 * 60 * 365,
                 anon_session_ttl=24 * 60 * 60, session_renew=0, anon_session_renew=0,
                 **kwargs):
        base_options = {}
        if 'expire_sessions' in kwargs:
            base_options['expire_sessions'] = kwargs.pop('expire_sessions')
        super(MongoDBConnection, self).__init__(session_ttl, anon_session_ttl, session_renew,
                                                anon_session_renew, **base_options)
        pymongo = import_driver('pymongo', 'mongodb', 'mongodb')
        from toto._mongolegacy import LegacyDatabase
        self._client = pymongo.MongoClient(host, port, **kwargs)
        self.db = LegacyDatabase(self._client, database)
        self._indexes_ready = False
        self._ensure_indexes(at_start=True)

    def close(self):
        """Close the client's connections (a later call opens new ones)."""
        self._client.close()

    # -- schema ----------------------------------------------------------------------

    def _ensure_indexes(self, at_start=False):
        # As 1.0.12: an index is created only when no index of that name exists, so indexes
        # someone changed by hand are left alone.
        if self._indexes_ready:
            return
        from pymongo.errors import ConnectionFailure
        try:
            for collection, indexes in (('sessions', _SESSION_INDEXES),
                                        ('accounts', _ACCOUNT_INDEXES)):
                existing = self.db[collection].index_information()
                for name, unique in indexes:
                    if name not in existing:
                        logger.info('creating index %s on %s', name, collection)
                        self.db[collection].create_index(name, name=name, unique=unique)
        except ConnectionFailure as error:
            if not at_start:
                raise
            logger.warning('database mongodb: cannot create indexes now (%s); '
                           'trying again on the first write', _one_line(error))
            return
        self._indexes_ready = True

    # -- accounts ----------------------------------------------------------------------

    @_outage_as_toto_error
    def _find_account(self, user_id):
        # The account document for the id as given, else (new accounts are lowercased) for
        # its lowercase form. Only strings: a dict here would be a query ({'$ne': ''}).
        if not user_id or not isinstance(user_id, six.string_types):
            return None
        account = self.db.accounts.find_one({'user_id': user_id})
        if account is None and self.lowercase_user_ids:
            lowered = user_id.lower()
            if lowered != user_id:
                account = self.db.accounts.find_one({'user_id': lowered})
        return account

    def _new_user_id(self, user_id):
        return user_id.lower() if self.lowercase_user_ids else user_id

    def _account_user_id(self, user_id, account):
        # Accounts 1.0.12 kept as typed are found and stored under their own spelling.
        return account['user_id']

    @staticmethod
    def _password_matches(password, account):
        stored = account.get('password')
        if not isinstance(stored, six.string_types):
            return False
        return DBConnection._password_matches(password, account)

    # -- sessions ----------------------------------------------------------------------

    @_outage_as_toto_error
    def clear_sessions(self, user_id):
        """End every session of ``user_id`` (found as a sign-in finds it; '' anonymous ones)."""
        account = self._find_account(user_id)
        if account is not None:
            user_id = account['user_id']
        if isinstance(user_id, six.string_types):
            self.db.sessions.delete_many({'user_id': user_id})

    # -- DBConnection hooks ------------------------------------------------------------

    def _get_account(self, user_id):
        return self._find_account(user_id)

    @_outage_as_toto_error
    def _store_account(self, user_id, values):
        self._ensure_indexes()
        self.db.accounts.insert_one(values)

    @_outage_as_toto_error
    def _update_password(self, user_id, account, hashed_password):
        self.db.accounts.update_one({'_id': account['_id']},
                                    {'$set': {'password': hashed_password}})
        # As 1.0.12: a new password ends every session of the account.
        self.clear_sessions(user_id)

    @_outage_as_toto_error
    def _store_session(self, session_id, session_data):
        self._ensure_indexes()
        document = dict(session_data)
        if 'state' in document:
            document['state'] = _storable(document['state'])
        # As 1.0.12: the user's ended sessions go when a new one starts.
        self.db.sessions.delete_many({'user_id': document['user_id'],
                                      'expires': {'$lt': time.time()}})
        self.db.sessions.insert_one(document)

    @_outage_as_toto_error
    def _update_expiry(self, session_id, session_data):
        self.db.sessions.update_one({'session_id': session_id},
                                    {'$set': {'expires': session_data['expires']}})

    @_outage_as_toto_error
    def _load_uncached_data(self, session_id):
        if not isinstance(session_id, six.string_types):
            return None
        query = {'session_id': session_id}
        if self.expire_sessions:
            query['expires'] = {'$gt': time.time()}
        document = self.db.sessions.find_one(query)
        if document is None:
            return None
        if not isinstance(document.get('expires'), (float,) + six.integer_types):
            logger.warning('session %s has no usable expiry: ignored', session_id)
            return None
        document.setdefault('user_id', '')
        return _loadable(document)

    @_outage_as_toto_error
    def _remove_session(self, session_id):
        self.db.sessions.delete_many({'session_id': session_id})

    def _instantiate_session(self, session_data, session_cache):
        try:
            return MongoDBSession(self.db, session_data, session_cache)
        except Exception as error:
            # Rows are not trusted: a state that does not load ends the session, not the
            # process (pickles here come from the database, never from a client).
            logger.warning('session %s: stored state cannot be loaded (%s: %s)',
                           session_data.get('session_id'), type(error).__name__, error)
            raise TotoException(ERROR_INVALID_SESSION_ID, 'Invalid session ID.')


def _one_line(error):
    # pymongo's selection errors append a topology description: keep the cause.
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text.split(', Timeout:')[0].split(' (configured timeouts')[0]


def _address():
    return '%s:%s' % (options.db_host, options.db_port or DEFAULT_PORT)


def connection_from_options():
    """The connection ``--db_host``, ``--db_port`` and ``--mongodb_database`` name."""
    settings = _session_settings()
    settings.update(_client_timeouts(options.database_timeout))
    return MongoDBConnection(options.db_host, options.db_port or DEFAULT_PORT,
                             options.mongodb_database, **settings)


def check_from_options():
    """Raise ``DatabaseUnavailable`` (one line) unless the server answers a ping.

    Runs in the parent before the processes start: the client it opens is closed again
    (pymongo clients must not cross a fork).
    """
    pymongo = import_driver('pymongo', 'mongodb', 'mongodb')
    timeout = min(options.database_timeout or _CHECK_TIMEOUT, _CHECK_TIMEOUT)
    try:
        client = pymongo.MongoClient(options.db_host, options.db_port or DEFAULT_PORT,
                                     connect=False, **_client_timeouts(timeout))
    except Exception as error:  # a malformed host or URI
        raise DatabaseUnavailable('database mongodb: cannot connect to %s (%s)'
                                  % (_address(), _one_line(error)))
    try:
        client.admin.command('ping')
    except Exception as error:
        raise DatabaseUnavailable('database mongodb: cannot connect to %s (%s)'
                                  % (_address(), _one_line(error)))
    finally:
        client.close()
