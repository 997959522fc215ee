"""Key loading and exposure checks shared by connections and workers (private).

ZeroMQ CURVE keys are given as 40-character Z85 text or as the path of a
certificate file written by :func:`zmq.auth.create_certificates`::

    server_public = load_curve_key('certs/server.key')
    client_secret = load_curve_key('certs/client.key_secret', secret=True)
"""

from __future__ import absolute_import, division, print_function

import logging
import os
import re

import six

logger = logging.getLogger('toto.security')

_Z85_KEY = re.compile(r'^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$')
_warned = set()


def load_curve_key(value, secret=False):
    """Return a CURVE key as Z85 bytes from Z85 text or a certificate file.

    With ``secret`` the certificate's secret key is returned (the file must
    be a ``.key_secret`` file), otherwise its public key.
    """
    if isinstance(value, six.binary_type):
        value = value.decode('ascii')
    value = value.strip()
    if _Z85_KEY.match(value) and not os.path.exists(value):
        return value.encode('ascii')
    if not os.path.isfile(value):
        raise ValueError('%r is neither a 40-character Z85 CURVE key nor a certificate file'
                         % (value,))
    import zmq.auth
    public, secret_key = zmq.auth.load_certificate(value)
    if secret:
        if not secret_key:
            raise ValueError('certificate %r holds no secret key' % (value,))
        return secret_key
    return public


def is_loopback(host):
    """Tell whether ``host`` (from a bind address) is reachable only locally."""
    host = (host or '').strip('[]').lower()
    return host == 'localhost' or host == '::1' or host.startswith('127.')


def zmq_bind_host(address):
    """The host part of a ZeroMQ bind address; None for ipc:// and inproc://."""
    match = re.match(r'^(?:tcp|ws|wss)://(.*):[^:]*$', address or '')
    return match.group(1) if match else None


def warn_once_if_exposed(what, host, serialization, protected, advice=None):
    """Warn (once per process and address) about pickle open to the network.

    Unpickling runs code chosen by whoever sent the bytes, so a worker that
    unpickles requests from other machines without authenticating them runs
    code for anyone who can reach it.
    """
    if host is None or is_loopback(host) or serialization or protected:
        return
    key = (what, host)
    if key in _warned:
        return
    _warned.add(key)
    logger.warning('%s accepts pickled calls on %s without authentication: anyone who '
                   'can reach it can run code in the worker. Bind to 127.0.0.1, use '
                   '--serialization_module=json%s.', what, host or '*',
                   ', or ' + advice if advice else '')
