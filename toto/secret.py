"""Password hashes that Toto 1.0.12 wrote, and stronger ones it can still read.

Toto 1.0.12 stored passwords as PBKDF2-HMAC-SHA1 hashes in the ``$p5k2$``
text format of the ``pbkdf2`` package.  This module reads every hash in that
format and writes new ones in it too, so a fleet that mixes old and new
servers keeps logging everybody in::

    from toto.secret import password_hash, verify_password, password_needs_rehash

    stored = password_hash(u'correct horse')       # '$p5k2$186a0$<salt>$<hash>'
    if verify_password(u'correct horse', stored):
        if password_needs_rehash(stored):
            stored = password_hash(u'correct horse')  # save this one

The format is ``$p5k2$<iterations in lowercase hex>$<salt>$<hash>``: the salt
is made of ``[A-Za-z0-9./]``, PBKDF2 runs over the whole text before the
last ``$`` as its salt, and the 24-byte result is written in 32 characters of
base64 whose alphabet ends in ``./``.  400 iterations are written with an
empty count (``$p5k2$$``); that is the only cost 1.0.12 ever wrote, with an
8-character salt: 48 characters in all, which is why applications created
``char(48)`` columns.

New hashes cost :data:`DEFAULT_ITERATIONS` iterations and have a 16-character
salt (96 random bits): 61 characters at the default cost, and never more than
62 for any cost this module accepts, so a ``varchar(64)`` column holds them.
The cost is chosen, at the moment a hash is written, by the
``--password_hash_iterations`` option; ``--password_hash_legacy`` writes the
old 48-character, 400-iteration form instead, for ``char(48)`` columns.
:func:`set_password_hash_cost` sets both from code.
"""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import hmac
import logging
import os
import re

import six
from tornado.options import options

from toto.options import safe_define

logger = logging.getLogger('toto.secret')

#: The cost of the hashes Toto 1.0.12 wrote (written as an empty count).
LEGACY_ITERATIONS = 400

#: The cost of new hashes unless ``--password_hash_iterations`` says otherwise.
#: About 50 ms per hash or check with OpenSSL's PBKDF2 on one current core, and
#: about 1.4 s for a server still running 1.0.12 (its PBKDF2 is pure Python).
DEFAULT_ITERATIONS = 100000

#: The highest cost this module writes or checks.  A stored hash asking for
#: more is refused unchecked: a corrupted or planted count must not hold a
#: request for minutes.  It also keeps every new hash within 62 characters.
MAX_ITERATIONS = 5000000

_PREFIX = u'$p5k2$'
_SALT_CHARACTERS = 16
_LEGACY_SALT_CHARACTERS = 8
_HASH_BYTES = 24
# Anchored with \Z: '$' would also match before a final newline.
_STORED_HASH = re.compile(
    u'^\\$p5k2\\$([0-9a-f]*)\\$([A-Za-z0-9./]*)\\$([A-Za-z0-9./]{32})\\Z')

_OPTION_GROUP = 'password hash'

safe_define('password_hash_iterations', default=DEFAULT_ITERATIONS, type=int,
            group=_OPTION_GROUP, metavar='N',
            help='PBKDF2 iterations of new password hashes (1 to %d); Toto 1.0.12 '
                 'servers can verify any of them' % MAX_ITERATIONS)
safe_define('password_hash_legacy', default=False, type=bool, group=_OPTION_GROUP,
            help='Write password hashes exactly as Toto 1.0.12 did: 400 iterations, '
                 '48 characters (for char(48) columns)')


def password_hash(secret, iterations=None, legacy=None):
    """Return a new salted hash of ``secret`` (text, or bytes) as text.

    ``iterations`` and ``legacy`` default to the ``password_hash_iterations``
    and ``password_hash_legacy`` options, read now so that a conf file parsed
    after import applies.  ``legacy`` writes the 1.0.12 form (400 iterations,
    an 8-character salt) and overrides ``iterations``.  Text is hashed as
    UTF-8, as 1.0.12 did; anything else raises :class:`TypeError`.
    """
    word = _secret_bytes(secret)
    iterations, salt_characters = _chosen_cost(iterations, legacy)
    return _hash(word, _new_salt(salt_characters), iterations)


def verify_password(secret, pwhash):
    """Tell whether ``secret`` is the password ``pwhash`` was made from.

    Every hash in the ``$p5k2$`` format is understood: the 1.0.12 ones and any
    cost written by this module or by ``pbkdf2.crypt``.  A stored hash that is
    missing, malformed or costs more than :data:`MAX_ITERATIONS` gives
    ``False`` (nothing is raised).  A ``secret`` that is neither text nor
    bytes raises :class:`TypeError`, as it did in 1.0.12.  The comparison
    takes the same time wherever the hashes differ.
    """
    word = _secret_bytes(secret)
    parsed = _parse(pwhash)
    if parsed is None:
        return False
    text, iterations, salt = parsed
    if iterations > MAX_ITERATIONS:
        logger.warning('refused to check a password hash that asks for %d PBKDF2 iterations '
                       '(more than %d)', iterations, MAX_ITERATIONS)
        return False
    expected = _hash(word, salt, iterations)
    return hmac.compare_digest(expected.encode('ascii'), text.encode('ascii'))


def password_needs_rehash(pwhash, iterations=None, legacy=None):
    """Tell whether ``pwhash`` should be replaced by a new hash of its password.

    True when it is malformed, or its cost or salt length is not the one
    :func:`password_hash` would use now (same arguments and options).  Call it
    after a successful :func:`verify_password`, while the password is at hand.
    """
    parsed = _parse(pwhash)
    if parsed is None:
        return True
    wanted_iterations, salt_characters = _chosen_cost(iterations, legacy)
    _text, stored_iterations, salt = parsed
    return stored_iterations != wanted_iterations or len(salt) < salt_characters


def set_password_hash_cost(iterations=None, legacy=None):
    """Set the ``password_hash_iterations`` / ``password_hash_legacy`` options.

    Arguments left as None keep their value.  Takes effect for the next hash
    written, in this process.
    """
    if iterations is not None:
        options.password_hash_iterations = _checked_iterations(iterations)
    if legacy is not None:
        options.password_hash_legacy = bool(legacy)


# -- helpers ---------------------------------------------------------------------------

def _secret_bytes(secret):
    # The bytes 1.0.12 fed PBKDF2: text as UTF-8, a byte string unchanged.
    if isinstance(secret, six.binary_type):
        return secret
    if isinstance(secret, six.text_type):
        if six.PY2:
            return secret.encode('utf-8')
        # Python 2 encodes a lone surrogate (as JSON can carry one) instead of
        # failing; so must Python 3, or such a password could never log in.
        return secret.encode('utf-8', 'surrogatepass')
    raise TypeError('a password must be text or bytes, not %s' % type(secret).__name__)


def _chosen_cost(iterations, legacy):
    """(iterations, salt length) for a new hash: arguments first, then options."""
    if legacy is None:
        legacy = getattr(options, 'password_hash_legacy', False)
    if legacy:
        return LEGACY_ITERATIONS, _LEGACY_SALT_CHARACTERS
    if iterations is None:
        iterations = getattr(options, 'password_hash_iterations', DEFAULT_ITERATIONS)
        if iterations is None:
            iterations = DEFAULT_ITERATIONS
    return _checked_iterations(iterations), _SALT_CHARACTERS


def _checked_iterations(iterations):
    if isinstance(iterations, bool) or not isinstance(iterations, six.integer_types):
        raise TypeError('password hash iterations must be an integer, not %r' % (iterations,))
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError('password hash iterations must be between 1 and %d, not %d'
                         % (MAX_ITERATIONS, iterations))
    return int(iterations)


def _new_salt(characters):
    # Six random bits per character from the OS generator; the counts used
    # here are multiples of four characters, so base64 adds no padding.
    text = base64.b64encode(os.urandom(characters * 3 // 4), b'./')
    return text.decode('ascii')


def _hash(word, salt, iterations):
    """The stored form of ``word``: what pbkdf2.crypt(word, salt, iterations) returns."""
    if iterations == LEGACY_ITERATIONS:
        # 400 is always written as an empty count; readers rely on it.
        head = u'%s$%s' % (_PREFIX, salt)
    else:
        head = u'%s%x$%s' % (_PREFIX, iterations, salt)
    derived = hashlib.pbkdf2_hmac('sha1', word, head.encode('ascii'), iterations, _HASH_BYTES)
    return head + u'$' + base64.b64encode(derived, b'./').decode('ascii')


def _parse(pwhash):
    """(text, iterations, salt) of a well-formed stored hash, else None.

    Well-formed means pbkdf2.crypt could have written it: a count in
    lowercase hex without leading zeros, never '190' (400 is written empty).
    """
    if isinstance(pwhash, six.binary_type):
        try:
            pwhash = pwhash.decode('ascii')
        except UnicodeDecodeError:
            return None
    if not isinstance(pwhash, six.text_type):
        return None
    match = _STORED_HASH.match(pwhash)
    if match is None:
        return None
    count, salt, _digest = match.groups()
    if not count:
        return pwhash, LEGACY_ITERATIONS, salt
    if count.startswith(u'0'):
        return None
    iterations = int(count, 16)
    if iterations == LEGACY_ITERATIONS:
        return None
    return pwhash, iterations, salt
