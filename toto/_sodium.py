"""Keep CURVE from aborting the process on old pyzmq wheels (private).

pyzmq wheels before 22.2.1 (every wheel for Python 2.7 among them) bundle a
libzmq that calls libsodium's ``randombytes_close()`` whenever a context ends
and on every ``zmq.curve_keypair()``.  Their libsodium reads ``/dev/urandom``
through one descriptor shared by the whole process: closing it while another
thread's CURVE handshake draws random bytes makes libsodium call ``abort()``,
silently (libzmq issue 4241; the pyzmq 22.2.1 wheels carry the fix).  A Toto
process that ends one context while another makes CURVE connections -- an
event listener stopping beside a worker client, or a key pair made while a
connection handshakes -- dies with SIGABRT.

:func:`keep_random_source_open` removes the hazard the way the fix does: the
descriptor stays open for the life of the process.  It installs, as
libsodium's random source, a copy of the source in use whose ``close`` is
empty; the functions that draw bytes are the same ones::

    from toto._sodium import keep_random_source_open

    keep_random_source_open()     # before the first CURVE socket; idempotent

It does nothing on pyzmq 22.2.1 and later, without CURVE, and where the
bundled libsodium cannot be found (a pyzmq built against a system libzmq, or
a platform without ``/proc/self/maps``).
"""

from __future__ import absolute_import, division, print_function

import ctypes
import logging
import threading

import zmq

logger = logging.getLogger('toto.security')

#: The first pyzmq whose wheels no longer close libsodium's random source.
FIXED_PYZMQ = (22, 2, 1)


class _RandomSource(ctypes.Structure):
    """libsodium's ``randombytes_implementation``: six function pointers."""

    _fields_ = [(name, ctypes.c_void_p) for name in
                ('implementation_name', 'random', 'stir', 'uniform', 'buf', 'close')]


_lock = threading.Lock()
# The installed copy: libsodium keeps a pointer to it, so it must live as long
# as the process does.  None until installed (or when nothing is needed).
_installed = None
_checked = False


def keep_random_source_open():
    """Make libsodium's ``randombytes_close()`` a no-op where the bundled libzmq calls it.

    Returns True when the copy was installed (now or earlier), False when the
    pyzmq in use needs nothing or offers no libsodium to fix.
    """
    global _checked, _installed
    with _lock:
        if not _checked:
            _checked = True
            if _needs_fix():
                _installed = _install()
        return _installed is not None


def _needs_fix():
    if tuple(zmq.pyzmq_version_info()[:3]) >= FIXED_PYZMQ:
        return False
    return bool(zmq.has('curve'))


def _loaded_libsodium():
    """The path of the libsodium this process has loaded, or None."""
    try:
        with open('/proc/self/maps') as maps:
            for line in maps:
                path = line.rstrip('\n').split(None, 5)[-1]
                if '/libsodium' in path and '.so' in path:
                    return path
    except (IOError, OSError):
        return None
    return None


def _install():
    path = _loaded_libsodium()
    if path is None:
        logger.debug('pyzmq %s: no libsodium loaded, random source left as it is',
                     zmq.pyzmq_version())
        return None
    try:
        library = ctypes.CDLL(path)
        library.randombytes_implementation_name.restype = ctypes.c_char_p
        name = library.randombytes_implementation_name().decode('ascii')
        in_use = _RandomSource.in_dll(library, 'randombytes_%s_implementation' % name)
        copy = _RandomSource(*[getattr(in_use, field) for field, _ in _RandomSource._fields_])
        copy.close = None  # libsodium skips an empty close
        library.randombytes_set_implementation.argtypes = [ctypes.POINTER(_RandomSource)]
        if library.randombytes_set_implementation(ctypes.byref(copy)) != 0:
            raise OSError('randombytes_set_implementation refused the copy')
    except (AttributeError, OSError, UnicodeDecodeError, ValueError) as error:
        logger.warning('pyzmq %s: could not keep libsodium\'s random source open (%s); '
                       'ending a ZeroMQ context during CURVE handshakes may abort the '
                       'process (fixed in pyzmq 22.2.1)', zmq.pyzmq_version(), error)
        return None
    logger.debug('pyzmq %s: libsodium\'s random source (%s) stays open for the life of '
                 'the process', zmq.pyzmq_version(), name)
    return copy
