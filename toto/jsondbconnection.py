"""The ``--database=json`` connection: accounts and sessions in one JSON document.

For development and tests, not production. The document lives in memory and, with
``persistent=True``, is written back to its file after every change (to a temporary file that
then replaces the old one, so a crash never leaves half a file). The layout is Toto 1.0.12's, so
a file either one wrote loads in the other::

    {"account": {"<user_id>": {"user_id": ..., "password": "$p5k2$$...", <create fields>,
                               "properties": {<account properties>}}},
     "session": {"<session_id>": {"user_id": ..., "expires": ..., "session_id": ...,
                                  "key": ..., "state": "<pickle>"}}}

Usage::

    from toto.jsondbconnection import JSONConnection

    connection = JSONConnection('store.json', persistent=True)   # the file may not exist yet
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')

``--database=json`` makes ``JSONConnection(db_host, db_port, <session options>)``: the file is
``--db_host`` (empty for memory only) and a non-zero ``--db_port`` turns on ``persistent``.
A connection is safe to share between threads; processes each keep their own copy.
"""

from __future__ import absolute_import, division, print_function

import copy
import errno
import json
import logging
import os
import stat
import tempfile
import threading
import time

import six

from toto.dbconnection import DBConnection
from toto.exceptions import ERROR_INVALID_SESSION_ID, ERROR_USER_NOT_FOUND, TotoException
from toto.session import TotoAccount, TotoSession

logger = logging.getLogger('toto.jsondbconnection')


def _storable(session_data):
    # JSON holds text: the serializer's bytes are kept as Latin-1 text, which loads() turns
    # back into the same bytes (the default pickle is ASCII, so the file reads as before).
    document = dict(session_data)
    state = document.get('state')
    if isinstance(state, bytes):
        document['state'] = state.decode('latin-1')
    return document


class JSONAccount(TotoAccount):
    """Account properties, kept in the account's ``properties`` dict."""

    def _load_property(self, *keys):
        return self._session._db.get('account', self._session.user_id, 'properties') or {}

    def _save_property(self, *keys):
        if not keys:
            return
        self._session._db._update_properties(
            self._session.user_id, dict((key, self._properties[key]) for key in keys))

    def __setitem__(self, key, value):
        # Ignored as in 1.0.12, where SQL drivers keep the account id under this name.
        if key != 'account_id':
            super(JSONAccount, self).__setitem__(key, value)


class JSONSession(TotoSession):
    """A session stored under ``session/<session_id>``."""

    _account = None

    def get_account(self, *args):
        if not self._account:
            self._account = JSONAccount(self)
        return self._account

    def refresh(self):
        session_data = self._refresh_cache() or self._db.get('session', self.session_id)
        if not session_data:
            raise TotoException(ERROR_INVALID_SESSION_ID, 'Invalid session ID.')
        self.__init__(self._db, session_data, self._session_cache)

    def save(self):
        if not self._save_cache():
            self._db._update_session(self.session_id, _storable(self.session_data()))


# 1.0.12 defined the account class inside the session class.
JSONSession.JSONAccount = JSONAccount  # type: ignore[attr-defined]


class JSONConnection(DBConnection):
    """Accounts and sessions in a JSON document, kept in ``filename`` if given.

    ``filename`` None or empty keeps everything in memory. With ``persistent`` the file is
    rewritten after each change and need not exist yet; without it an existing file is only
    read. Further arguments are those of :class:`~toto.dbconnection.DBConnection`
    (``expire_sessions=False`` keeps sessions forever, as 1.0.12 did).
    """

    def __init__(self, filename=None, persistent=False, *args, **kwargs):
        super(JSONConnection, self).__init__(*args, **kwargs)
        self._file = filename or None
        self._persistent = bool(self._file and persistent)
        self._lock = threading.RLock()
        self.db = None
        self._data = self._read_file() if self._file else {}

    # -- the document: 1.0.12's get/set, plus thread safety and atomic writes ----------

    def get(self, *path):
        """A copy of the value at ``path`` (keys from the top), or None."""
        with self._lock:
            parent = self._find(path[:-1])
            return copy.deepcopy(parent.get(path[-1])) if parent else None

    def set(self, *args, **values):
        """Change the document and write it out when persistent.

        ``set(*path, key, value)`` sets ``key`` in the dict at ``path`` (None deletes it);
        ``set(*path, **values)`` does that for each keyword. Missing dicts on the path are
        created.
        """
        with self._lock:
            if values:
                target = self._find(args, create=True)
                items = values.items()
            else:
                target = self._find(args[:-2], create=True)
                items = [(args[-2], args[-1])]
            for key, value in items:
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = copy.deepcopy(value)
            self._write()

    def clear(self):
        """Forget everything (memory only; a persistent connection keeps its data)."""
        if self._persistent:
            return
        with self._lock:
            self._data = {}

    def _find(self, path, create=False):
        data = self._data
        for key in path:
            if key not in data:
                if not create:
                    return None
                data[key] = {}
            data = data[key]
        return data

    def _read_file(self):
        try:
            with open(self._file, 'rb') as stored:
                text = stored.read().decode('utf-8')
        except (IOError, OSError) as error:
            # A persistent store starts empty; reading a file that is not there is a mistake.
            if self._persistent and error.errno == errno.ENOENT:
                return {}
            raise
        return json.loads(text) if text.strip() else {}

    def _write(self):
        if not self._persistent:
            return
        encoded = json.dumps(self._data, sort_keys=True)
        if isinstance(encoded, six.text_type):
            encoded = encoded.encode('ascii')
        directory = os.path.dirname(os.path.abspath(self._file))
        descriptor, temporary = tempfile.mkstemp(
            prefix='.%s.' % os.path.basename(self._file), suffix='.tmp', dir=directory)
        try:
            try:
                # Keep the permissions of the file being replaced (new files stay 0600:
                # the store holds password hashes and HMAC keys).
                os.chmod(temporary, stat.S_IMODE(os.stat(self._file).st_mode))
            except OSError:
                pass
            with os.fdopen(descriptor, 'wb') as output:
                output.write(encoded)
                output.flush()
                os.fsync(output.fileno())
            _replace(temporary, self._file)
        except BaseException:
            _remove_quietly(temporary)
            raise

    # -- DBConnection hooks ------------------------------------------------------------

    def _store_account(self, user_id, values):
        self.set('account', user_id, values)

    def _get_account(self, user_id):
        account = self.get('account', user_id)
        if not account:
            return None
        return {'password': account['password']}

    def _update_password(self, user_id, account, hashed_password):
        self.set('account', user_id, 'password', hashed_password)

    def _update_properties(self, user_id, properties):
        with self._lock:
            account = self._find(('account', user_id))
            if not account:
                raise TotoException(ERROR_USER_NOT_FOUND, 'Invalid user ID')
            stored = account.setdefault('properties', {})
            stored.update(copy.deepcopy(properties))
            self._write()

    def _store_session(self, session_id, session_data):
        with self._lock:
            if self.expire_sessions:
                self._drop_expired_sessions()
            self.set('session', session_id, _storable(session_data))

    def _update_expiry(self, session_id, session_data):
        self.set('session', session_id, _storable(session_data))

    def _update_session(self, session_id, session_data):
        # A save never brings back a session that was removed meanwhile.
        with self._lock:
            if self._find(('session', session_id)) is not None:
                self.set('session', session_id, session_data)

    def _load_uncached_data(self, session_id):
        return self.get('session', session_id)

    def _remove_session(self, session_id):
        self.set('session', session_id, None)

    def _instantiate_session(self, session_data, session_cache):
        return JSONSession(self, session_data, session_cache)

    def clear_sessions(self, user_id):
        """End every session of ``user_id`` stored here."""
        user_id = (user_id or '').lower()
        with self._lock:
            sessions = self._find(('session',)) or {}
            ended = [session_id for session_id, data in sessions.items()
                     if data.get('user_id') == user_id]
            for session_id in ended:
                del sessions[session_id]
            if ended:
                self._write()

    def _drop_expired_sessions(self):
        # Called when a session is created, so a long-running store does not grow forever.
        sessions = self._find(('session',)) or {}
        now = time.time()
        expired = [session_id for session_id, data in sessions.items()
                   if data.get('expires', now) < now]
        for session_id in expired:
            del sessions[session_id]
        if expired:
            logger.debug('dropped %d expired sessions', len(expired))


def _replace(source, target):
    if hasattr(os, 'replace'):
        os.replace(source, target)
    elif os.name == 'nt' and os.path.exists(target):
        # Python 2 on Windows cannot rename over a file.
        os.remove(target)
        os.rename(source, target)
    else:
        os.rename(source, target)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
