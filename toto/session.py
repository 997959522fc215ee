"""Sessions and accounts as the database drivers store them.

A :class:`TotoSession` is what ``handler.session`` holds once a request has a session: who is
signed in (``user_id``, empty for an anonymous session), when the session ends (``expires``,
seconds since the epoch), its id, the HMAC ``key`` of the client, and ``state``, a dict the
application keeps between requests. Each database driver subclasses it to say how the session
is saved and reloaded, and subclasses :class:`TotoAccount` to say how account properties are read
and written. A :class:`TotoSessionCache` keeps sessions outside the database (for example
``toto.clientsessioncache.ClientCache``, which keeps them in the session id itself)::

    session = db_connection.create_session('alice', 'secret')
    session['visits'] = (session['visits'] or 0) + 1    # None when missing
    session.save()
    account = session.get_account()
    account['nickname'] = 'al'
    account.save()

State is stored as the serializer's string (``pickle`` by default). The default pickle is
protocol 0 with every byte above 127 escaped, so the stored text is ASCII: the same state loads
on Python 2 and 3 and in stores written by Toto 1.0.12. On Python 3, Python 2 ``str`` values
in old state load as text decoded from UTF-8 (other bytes as surrogate escapes).
"""

from __future__ import absolute_import, division, print_function

import hmac
import io
import logging
import re
from base64 import b64encode
from hashlib import sha1
from uuid import uuid4

import six
from six.moves import cPickle

from toto.exceptions import *  # noqa: F401 -- drivers take the error names from here too
from toto.exceptions import __all__ as _exception_names
from toto.exceptions import ERROR_INVALID_HMAC, TotoException

__all__ = ['SESSION_ID_LENGTH', 'TotoAccount', 'TotoSession', 'TotoSessionCache'] + list(
    _exception_names)

logger = logging.getLogger('toto.session')

#: Length of the ids :meth:`TotoSession.generate_id` makes (urlsafe base64 of 16 bytes).
SESSION_ID_LENGTH = 22

_HIGH_BYTE = re.compile(b'[\x80-\xff]')


def _escape_high_byte(match):
    # In a protocol 0 pickle a byte above 127 can only sit in the text of a UNICODE opcode,
    # which is raw-unicode-escape encoded, where literal backslashes are already written as
    # \u005c: so \u00XX decodes back to the same character, and the pickle becomes ASCII.
    return ('\\u00%02x' % ord(match.group())).encode('ascii')


class _PortablePickle(object):
    """The default session serializer: pickles both Python 2 and Python 3 can read.

    ``dumps`` writes protocol 0 (what 1.0.12's ``cPickle.dumps`` wrote) as ASCII; ``loads``
    also reads pickles Python 2 wrote, on Python 3 (see :class:`_Python2Unpickler`).
    """

    @staticmethod
    def dumps(data):
        return _HIGH_BYTE.sub(_escape_high_byte, cPickle.dumps(data, 0))

    @staticmethod
    def loads(data):
        if six.PY2:
            return cPickle.loads(data)
        return _Python2Unpickler(io.BytesIO(data)).load()


if six.PY3:
    _PY2_BYTE_STATE_CLASSES = frozenset(['datetime', 'date', 'time'])

    class _Python2Unpickler(cPickle.Unpickler):
        """Loads Python 2 pickles on Python 3: a Python 2 ``str`` becomes text.

        It is decoded as UTF-8, and bytes that are not UTF-8 become surrogate escapes, so
        ``value.encode('utf-8', 'surrogateescape')`` gives them back. datetime, date and time
        pickle their state as such a str; it is turned back into those bytes for them.
        """

        def __init__(self, stream):
            cPickle.Unpickler.__init__(self, stream, encoding='utf-8', errors='surrogateescape')

        def find_class(self, module, name):
            found = cPickle.Unpickler.find_class(self, module, name)
            if module == 'datetime' and name in _PY2_BYTE_STATE_CLASSES:
                return _with_byte_state(found)
            return found

    def _with_byte_state(cls):
        def build(*args):
            if args and isinstance(args[0], str):
                args = (args[0].encode('utf-8', 'surrogateescape'),) + args[1:]
            return cls(*args)
        return build


def _as_bytes(data):
    # 1.0.12 applied str() before loading. Stores that hold text (JSON) give the serializer's
    # bytes back as text; Latin-1 maps the characters back to the same bytes, and text from a
    # serializer that writes text (json) becomes UTF-8.
    if isinstance(data, six.text_type):
        try:
            return data.encode('latin-1')
        except UnicodeEncodeError:
            return data.encode('utf-8')
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return data


def _utf8(data):
    if isinstance(data, six.text_type):
        return data.encode('utf-8')
    return data


def _native_ascii(data):
    # base64 output as the native str type (bytes on Python 2, text on Python 3).
    return data if six.PY2 else data.decode('ascii')


class TotoAccount(object):
    """The account properties of a signed-in session, read from the database on first use.

    ``account[key]`` loads a key that is not loaded yet and gives None for a missing or falsy
    value; ``key in account`` and iteration see only the loaded keys. Keys set with
    ``account[key] = value`` are written by :meth:`save`. Drivers implement
    ``_load_property(*keys)`` (returning a dict) and ``_save_property(*keys)``.
    """

    def __init__(self, session):
        self._session = session
        self._modified_properties = set()
        self._properties = {}

    def __getitem__(self, key):
        if key not in self._properties:
            self.load_property(key)
        return self._properties.get(key) or None

    def __setitem__(self, key, value):
        self._properties[key] = value
        self._modified_properties.add(key)

    def __contains__(self, key):
        return key in self._properties

    def __iter__(self):
        return iter(self._properties)

    def iterkeys(self):
        return iter(self._properties)

    def save(self):
        """Write the keys set since the last save to the account."""
        self._save_property(*self._modified_properties)
        self._modified_properties.clear()

    def load_property(self, *keys):
        """Load several keys in one read (each ``account[key]`` reads one); returns self."""
        loaded = self._load_property(*keys)
        for key in loaded:
            self._properties[key] = loaded[key]
        return self

    def __str__(self):
        return str({'properties': self._properties, 'modified': self._modified_properties})

    def _load_property(self, *keys):
        raise Exception('Unimplemented operation: _load_property')

    def _save_property(self, *keys):
        raise Exception('Unimplemented operation: _save_property')


class TotoSession(object):
    """A session: ``user_id``, ``expires``, ``session_id``, ``key`` and the ``state`` dict.

    ``db`` is the driver's database handle, ``session_data`` the dict the driver stored (with
    ``state`` as the serializer's string, if any). ``session[key]`` reads ``state`` and gives
    None for a missing or falsy value; ``session[key] = value``, ``del session[key]`` (missing
    keys are fine), ``in`` and iteration work on ``state`` too. Drivers implement
    :meth:`get_account`, :meth:`refresh` and :meth:`save`.
    """

    __serializer = _PortablePickle

    def __init__(self, db, session_data, session_cache=None, key=None):
        self._db = db
        self._session_cache = session_cache
        self.user_id = session_data['user_id']
        self.expires = session_data['expires']
        self.session_id = session_data['session_id']
        state = session_data.get('state')
        self.state = state and TotoSession.loads(state) or {}
        self.key = key or session_data.get('key') or None

    def get_account(self, *args):
        """The :class:`TotoAccount` of the signed-in user."""
        raise Exception('Unimplemented operation: get_account')

    def session_data(self):
        """The dict a driver stores; ``TotoSession(db, session.session_data())`` is a copy."""
        data = {'user_id': self.user_id, 'expires': self.expires, 'session_id': self.session_id,
                'state': TotoSession.dumps(self.state)}
        if self.key:
            data['key'] = self.key
        return data

    def __getitem__(self, key):
        return self.state.get(key) or None

    def __setitem__(self, key, value):
        self.state[key] = value

    def __delitem__(self, key):
        self.state.pop(key, None)

    def __iter__(self):
        return iter(self.state)

    def iterkeys(self):
        return iter(self.state)

    def __contains__(self, key):
        return key in self.state

    def __str__(self):
        return str({'user_id': self.user_id, 'expires': self.expires, 'id': self.session_id,
                    'state': self.state})

    def _refresh_cache(self):
        # The session data from the cache, or None when there is no cache.
        if self._session_cache:
            return self._session_cache.load_session(self.session_id)
        return None

    def refresh(self):
        """Reload the session from where it is stored."""
        raise Exception('Unimplemented operation: refresh')

    def _save_cache(self):
        # True when a cache took the session (it may give the session a new id).
        if self._session_cache:
            new_session_id = self._session_cache.store_session(self.session_data())
            if new_session_id:
                self.session_id = new_session_id
            return True
        return False

    def save(self):
        """Store the session (its ``state`` above all)."""
        raise Exception('Unimplemented operation: save')

    def verify(self, mac, signature):
        """Check that ``mac`` is :meth:`hmac` of ``signature``; returns self.

        Raises ``TotoException(ERROR_INVALID_HMAC)`` when the session has no key, ``mac`` or
        ``signature`` is empty, or the MAC differs (compared in constant time).
        """
        if not self.key or not mac or not signature:
            raise TotoException(ERROR_INVALID_HMAC, 'Invalid HMAC')
        if not hmac.compare_digest(_utf8(self.hmac(signature)), _utf8(mac)):
            raise TotoException(ERROR_INVALID_HMAC, 'Invalid HMAC')
        return self

    def hmac(self, signature):
        """base64(HMAC-SHA1(key, signature)) as a native string."""
        digest = hmac.new(_utf8(self.key), _utf8(signature), sha1).digest()
        return _native_ascii(b64encode(digest))

    @classmethod
    def set_serializer(cls, serializer):
        """Serialize session state with ``serializer`` (anything with ``loads`` and ``dumps``).

        Set it on ``TotoSession``: drivers and caches call ``TotoSession.loads``/``dumps``.
        """
        cls.__serializer = serializer

    @classmethod
    def loads(cls, data):
        """Load what :meth:`dumps` wrote, given as bytes or as text (JSON stores give text)."""
        return cls.__serializer.loads(_as_bytes(data))

    @classmethod
    def dumps(cls, data):
        """Serialize ``data`` with the serializer (bytes with the default pickle)."""
        return cls.__serializer.dumps(data)

    @classmethod
    def generate_id(cls):
        """A new random id: a uuid4 in urlsafe base64, 22 characters of ``[A-Za-z0-9_-]``."""
        return _native_ascii(b64encode(uuid4().bytes, b'-_')[:-2])


class TotoSessionCache(object):
    """Keeps sessions apart from the database, e.g. in a fast store or in the id itself.

    Install one with ``db_connection.set_session_cache(cache)``; the connection then stores,
    loads and removes sessions through it.
    """

    def store_session(self, session_data):
        """Store ``session_data`` (it has at least ``session_id`` and ``expires``).

        Replaces a stored session with the same id; the session should vanish after
        ``expires``. Return a new id to give the session one, or a falsy value to keep its id.
        """
        raise Exception('Unimplemented operation: store_session')

    def load_session(self, session_id):
        """The ``session_data`` stored for ``session_id``, or None."""
        raise Exception('Unimplemented operation: load_session')

    def remove_session(self, session_id):
        """End the session ``session_id`` now, if the cache can.

        Caches that can delete override this. The base does nothing: as documented in 1.0.12,
        a cached session may live until it expires.
        """
        logger.debug('%s cannot remove sessions; the session lives until it expires',
                     type(self).__name__)
