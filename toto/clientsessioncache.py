"""Sessions kept by the client: the session itself, encrypted and signed, is the session id.

A :class:`ClientCache` is a :class:`~toto.session.TotoSessionCache` that stores nothing on the
server. ``store_session`` encrypts and signs the session data and returns the result as the new
session id; ``load_session`` checks the signature and decrypts it again. Every server that
shares the two keys can load every session, with no session table to share. Install it from a
startup function::

    import os
    from toto.clientsessioncache import AESCipher, ClientCache

    def on_start(db_connection, **kwargs):      # --startup_function=startup.on_start
        # 32, 40 or 48 bytes: the AES key (16, 24 or 32 bytes), then a 16-byte IV.
        cipher = AESCipher(os.environ['SESSION_AES_KEY'])
        db_connection.set_session_cache(ClientCache(cipher, os.environ['SESSION_HMAC_KEY']))

Keep the session state small: it travels with every request (a new session makes an id of
about 200 characters). ``AESCipher`` needs pycryptodome or pycryptodomex
(``pip install toto-compat[clientcache]``).

The id, as Toto 1.0.12 wrote it, so that ids from either load in the other::

    urlsafe_base64( C + HMAC-SHA1(hmac_key, C) )        with the '=' padding
    C = cipher.encrypt( 16 random bytes + TotoSession.dumps(session_data) )

What this module does differently from 1.0.12, and why it is safe:

- The signature is checked in constant time, and **before** anything is decrypted or
  unpickled. Unpickling runs code the data names, so only data this cache signed may reach
  it: whoever holds ``hmac_key`` can run code in the server. Keep the key secret, long
  (at least 16 random bytes) and different from the AES key; an empty key is refused.
- An id whose session has expired loads as no session (1.0.12 never looked at ``expires``).
  ``ClientCache(..., check_expiry=False)`` keeps the old behaviour.
- The stored copy no longer holds the previous session id (1.0.12 meant to drop it and did
  not): ids do not grow inside each other, and an id does not reveal the one before it.
- The IV. Without ``iv``, :class:`AESCipher` takes the last 16 bytes of its key as a fixed IV,
  as 1.0.12 did. For the ids that does no harm: the first plaintext block is 16 fresh random
  bytes, so the first ciphertext block is random and serves as the IV of everything after
  it. This is the "random first block" alternative to an explicit IV that RFC 4346
  (section 6.2.3.2) describes for CBC. The reader throws that block away, so the format,
  which 1.0.12 must be able to read, needs no IV of its own.
- :meth:`ClientCache.remove_session` cannot end a session: nothing is stored, so there is
  nothing to delete. A logged-out id stays valid until it expires, and so do the older ids of
  a session (each renewal and each ``save()`` hands out a new id). Use short
  ``session_ttl`` values with this cache, or a server-side cache when logout must be final.
"""

from __future__ import absolute_import, division, print_function

import binascii
import hmac
import logging
import os
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from hashlib import sha1

import six

from toto.exceptions import TotoException
from toto.session import TotoSession, TotoSessionCache

__all__ = ['AESCipher', 'ClientCache', 'HMAC_ALGORITHM', 'HMAC_SIZE', 'PREFIX_PADDING_SIZE']

logger = logging.getLogger('toto.clientsessioncache')

#: The hash of the id's signature (HMAC-SHA1, as in 1.0.12).
HMAC_ALGORITHM = sha1
#: Bytes of signature at the end of a decoded id.
HMAC_SIZE = sha1().digest_size
#: Random bytes in front of the serialized session: the first cipher block (see above).
PREFIX_PADDING_SIZE = 16

#: The code of the errors of a bad id, 1.0.12's (it has no ERROR_ constant).
INVALID_SESSION_CODE = -1

# Keys shorter than this are accepted (1.0.12 took any) but logged.
_SHORT_HMAC_KEY = 16


def _aes_module():
    # pycryptodomex first: its package name cannot be the unmaintained PyCrypto's.
    try:
        from Cryptodome.Cipher import AES
    except ImportError:
        try:
            from Crypto.Cipher import AES
        except ImportError:
            raise ImportError('AESCipher needs pycryptodome or pycryptodomex: '
                              'pip install "toto-compat[clientcache]"')
    return AES


def _as_bytes(value, what):
    if isinstance(value, six.text_type):
        return value.encode('utf-8')
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError('%s must be bytes or text, not %s' % (what, type(value).__name__))


class AESCipher(object):
    """AES in CBC mode with PKCS#7 padding: ``encrypt(data)`` and ``decrypt(data)``.

    ``key`` is 16, 24 or 32 bytes (AES-128, -192 or -256). Without ``iv`` the last 16 bytes of
    ``key`` are the IV and the rest is the key, as in 1.0.12: a 32-character string is AES-128
    with a fixed IV. Text is taken as UTF-8. One instance may be used from many threads.

    It only hides data; it does not show whether the data was changed. :class:`ClientCache`
    signs what it encrypts; use it the same way if you use this class alone.
    """

    def __init__(self, key, iv=None):
        self._aes = _aes_module()
        self.block_size = self._aes.block_size
        key = _as_bytes(key, 'key')
        if iv:
            iv = _as_bytes(iv, 'iv')
        else:
            key, iv = key[:-self.block_size], key[-self.block_size:]
        self._key = key
        self._iv = iv
        self.aes()  # wrong key or IV sizes fail here, not at the first request

    def aes(self):
        """A new AES object for one message (CBC objects keep state between calls)."""
        return self._aes.new(self._key, self._aes.MODE_CBC, self._iv)

    def encrypt(self, data):
        """``data`` (bytes), padded and encrypted."""
        data = _as_bytes(data, 'data')
        pad = self.block_size - len(data) % self.block_size
        return self.aes().encrypt(data + six.int2byte(pad) * pad)

    def decrypt(self, data):
        """What :meth:`encrypt` was given; ValueError when the length or padding is wrong."""
        data = _as_bytes(data, 'data')
        if not data or len(data) % self.block_size:
            raise ValueError('AES data must be a positive multiple of %d bytes'
                             % self.block_size)
        plain = self.aes().decrypt(data)
        pad = six.indexbytes(plain, -1)
        if not 1 <= pad <= self.block_size or plain[-pad:] != six.int2byte(pad) * pad:
            raise ValueError('AES data has bad padding')
        return plain[:-pad]


class ClientCache(TotoSessionCache):
    """A session cache that keeps each session inside its own id (see the module docs).

    ``cipher`` has ``encrypt(bytes)`` and ``decrypt(bytes)`` (an :class:`AESCipher`);
    ``hmac_key`` signs the ids. Every server of a deployment needs the same cipher key and
    ``hmac_key``. With ``check_expiry`` (the default) an expired id loads as no session.

    A bad id (not base64, wrong signature) raises ``TotoException(-1, 'Invalid session
    HMAC')``, which the handler answers as an error, as 1.0.12 did.
    """

    def __init__(self, cipher, hmac_key, check_expiry=True):
        hmac_key = _as_bytes(hmac_key, 'hmac_key')
        if not hmac_key:
            # Anyone could sign ids, and loading an id unpickles it.
            raise ValueError('ClientCache needs a non-empty hmac_key')
        if len(hmac_key) < _SHORT_HMAC_KEY:
            logger.warning('the ClientCache hmac_key has only %d bytes: whoever guesses it can '
                           'run code in the server; use %d random bytes or more',
                           len(hmac_key), _SHORT_HMAC_KEY)
        self.cipher = cipher
        self.hmac_key = hmac_key
        self.check_expiry = check_expiry

    def hmac(self, data):
        """The signature of ``data``: HMAC-SHA1 with ``hmac_key`` (raw bytes)."""
        return hmac.new(self.hmac_key, data, HMAC_ALGORITHM).digest()

    def store_session(self, session_data):
        """The new id of ``session_data`` (the session id inside it is not kept)."""
        stored = dict(session_data)
        stored.pop('session_id', None)
        serialized = _as_bytes(TotoSession.dumps(stored), 'serialized session')
        encrypted = self.cipher.encrypt(os.urandom(PREFIX_PADDING_SIZE) + serialized)
        session_id = urlsafe_b64encode(encrypted + self.hmac(encrypted))
        return session_id if six.PY2 else session_id.decode('ascii')

    def load_session(self, session_id):
        """The session data inside ``session_id``, or None once it has expired."""
        raw = _decode_id(session_id)
        encrypted, signature = raw[:-HMAC_SIZE], raw[-HMAC_SIZE:]
        if not encrypted or not hmac.compare_digest(self.hmac(encrypted), signature):
            raise TotoException(INVALID_SESSION_CODE, 'Invalid session HMAC')
        # Signed by this cache (or a server with the same key): only now may it be unpickled.
        try:
            session_data = TotoSession.loads(self.cipher.decrypt(encrypted)[PREFIX_PADDING_SIZE:])
        except Exception:
            # Correctly signed but not readable: the servers do not share one cipher key (or
            # one session serializer).
            logger.error('a session id with a valid signature did not decrypt: do all servers '
                         'use the same AES key?', exc_info=True)
            raise TotoException(INVALID_SESSION_CODE, 'Invalid session')
        if not isinstance(session_data, dict):
            raise TotoException(INVALID_SESSION_CODE, 'Invalid session')
        _restore_state_bytes(session_data)
        if self.check_expiry and not session_data.get('expires', 0) > time.time():
            logger.debug('client session expired at %s', session_data.get('expires'))
            return None
        session_data['session_id'] = session_id
        return session_data

    def remove_session(self, session_id):
        """Nothing to remove: the id holds the session and stays valid until it expires."""
        logger.debug('ClientCache cannot end a session before it expires')


def _decode_id(session_id):
    # The decoded id, or the 1.0.12 error: clients send whatever they like here.
    try:
        if isinstance(session_id, six.text_type):
            text = session_id.encode('ascii')
        elif isinstance(session_id, bytes):
            text = session_id
        else:
            raise TypeError('a session id is a string')
        # 1.0.12 kept the '=' padding; accept ids whose client dropped it.
        raw = urlsafe_b64decode(text + b'=' * (-len(text) % 4))
    except (TypeError, ValueError, binascii.Error):
        raise TotoException(INVALID_SESSION_CODE, 'Invalid session HMAC')
    if len(raw) <= HMAC_SIZE:
        raise TotoException(INVALID_SESSION_CODE, 'Invalid session HMAC')
    return raw


def _restore_state_bytes(session_data):
    # On Python 3 a Python 2 pickle's str comes back as text (see toto.session); the state is
    # itself a serialized string, whose bytes the session loads, so give them back exactly.
    state = session_data.get('state')
    if six.PY3 and isinstance(state, str):
        session_data['state'] = state.encode('utf-8', 'surrogateescape')
