"""Key loading and exposure checks shared by connections and workers (private).

ZeroMQ CURVE keys are given as 40-character Z85 text or as the path of a
certificate file written by :func:`zmq.auth.create_certificates`::

    server_public = load_curve_key('certs/server.key')
    client_secret = load_curve_key('certs/client.key_secret', secret=True)

The ``ipc://`` sockets inside a worker service (between the router and its
worker processes, and the control channel) are bound in a place other
users cannot reach, and only as files nobody else owns::

    claim = bind_private(socket, 'ipc:///run/user/1000/toto/workerservice.sock')
    ...
    remove_if_unchanged(claim)    # on exit, unless another process took the path

and a socket that connects to one checks every connection ZeroMQ makes for
it, the automatic reconnections too, before it uses what came in::

    peers = PeerOwnerCheck(socket, address)   # before socket.connect(address)
    socket.connect(address)
    frames = socket.recv_multipart()
    if peers.refusal():                       # another user's process: drop all
        peers.close()
        socket.close(0)
"""

from __future__ import absolute_import, division, print_function

import contextlib
import errno
import logging
import os
import re
import socket as stdlib_socket
import stat
import struct
import sys

import six
import zmq
from zmq.utils.monitor import recv_monitor_message

from toto._sodium import keep_random_source_open

logger = logging.getLogger('toto.security')

# Every module that makes CURVE sockets imports this one: on old pyzmq wheels,
# ending a context must not abort another thread's CURVE handshake.
keep_random_source_open()

_Z85_KEY = re.compile(r'^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$')
_warned = set()  # type: set[str]


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


def shortened(text, limit=80):
    """``text``, cut to ``limit`` characters: peers choose it, and logs and answers quote it."""
    if len(text) <= limit:
        return text
    return '%s... (%d characters)' % (text[:limit], len(text))


def default_socket_directory():
    """The folder of the default ``ipc://`` addresses: private to this user.

    ``$XDG_RUNTIME_DIR/toto`` where the session has a runtime directory
    (``/run/user/<uid>``, which only the user can enter), else
    ``/tmp/toto-<uid>``, created with mode ``0700``.
    """
    runtime = os.environ.get('XDG_RUNTIME_DIR')
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, 'toto')
    return '/tmp/toto-%d' % os.getuid()


def ipc_path(address):
    """The file of an ``ipc://`` address; None for other transports and abstract names."""
    if not address or not address.startswith('ipc://'):
        return None
    path = address[len('ipc://'):]
    if not path or path.startswith('@'):
        return None
    return os.path.abspath(path)


def check_socket_path(address, binding):
    """Raise ValueError unless ``address``'s file is safe to bind or connect to.

    For ``ipc://`` addresses only: the folder must be this user's (or
    root's) and not open to other users' writes, unless it is a sticky
    folder such as ``/tmp``; a file already at the path must be a socket
    this user owns.  The default folder is created (``0700``) when
    ``binding``, and must be this user's alone.
    """
    path = ipc_path(address)
    if path is None:
        return
    uid = os.getuid()
    directory = os.path.dirname(path)
    private = directory == default_socket_directory()
    if private and binding:
        try:
            os.mkdir(directory, 0o700)
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise ValueError('cannot create the socket folder %s: %s'
                                 % (directory, error.strerror))
    try:
        folder = os.lstat(directory)
    except OSError as error:
        if error.errno == errno.ENOENT and not binding:
            return  # nothing to connect to yet; ZeroMQ keeps trying
        raise ValueError('socket folder %s of %s: %s' % (directory, address, error.strerror))
    if not stat.S_ISDIR(folder.st_mode):
        raise ValueError('socket folder %s of %s is not a folder (a symbolic link?)'
                         % (directory, address))
    if folder.st_uid not in (uid, 0) or (private and folder.st_uid != uid):
        raise ValueError('socket folder %s of %s belongs to user %d: another user '
                         'could stand in for the service there' % (
                             directory, address, folder.st_uid))
    if private and folder.st_mode & 0o077:
        raise ValueError('socket folder %s is open to other users (mode %o): make it '
                         '0700' % (directory, stat.S_IMODE(folder.st_mode)))
    if folder.st_mode & 0o022 and not folder.st_mode & stat.S_ISVTX:
        raise ValueError('socket folder %s of %s is writable by other users: they could '
                         'replace the socket' % (directory, address))
    try:
        existing = os.lstat(path)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return
        raise ValueError('socket %s: %s' % (address, error.strerror))
    if existing.st_uid != uid:
        raise ValueError('%s belongs to user %d, not to this service\'s user %d: '
                         'another user may be standing in for the service' % (
                             path, existing.st_uid, uid))
    if not stat.S_ISSOCK(existing.st_mode):
        raise ValueError('%s is not a socket' % path)


@contextlib.contextmanager
def _private_umask():
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def bind_private(socket, address):
    """Bind a ZeroMQ ``socket`` to ``address``; an ``ipc://`` file only this user can use.

    Returns what :func:`remove_if_unchanged` needs to remove the file on
    exit (None for other transports).
    """
    path = ipc_path(address)
    if path is None:
        socket.bind(address)
        return None
    check_socket_path(address, binding=True)
    # Only the owner can connect to a socket file of mode 0700, so another
    # user can neither call the workers nor pose as one.
    with _private_umask():
        socket.bind(address)
    # The same checks once more: the file must now be this user's socket.
    check_socket_path(address, binding=False)
    return claim_of(address)


def claim_of(address):
    """What :func:`remove_if_unchanged` needs for the ``ipc://`` file at ``address``.

    None for other transports, or when there is no file.
    """
    path = ipc_path(address)
    if path is None:
        return None
    try:
        bound = os.lstat(path)
    except OSError:
        return None
    return (path, bound.st_dev, bound.st_ino)


def remove_if_unchanged(claim):
    """Remove a socket file, unless it was replaced since :func:`claim_of` saw it."""
    if claim is None:
        return
    path, device, inode = claim
    try:
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (device, inode):
            os.unlink(path)
    except OSError:
        pass


# Python 2 does not name the option; 17 is its number on Linux.
_SO_PEERCRED = getattr(stdlib_socket, 'SO_PEERCRED',
                       17 if sys.platform.startswith('linux') else None)
_CREDENTIALS = struct.Struct('3i')  # pid, uid, gid
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def _unix_peer(descriptor):
    """``(uid, path)`` of the listener at the far end of Unix socket ``descriptor``.

    None when it cannot be told: no such option here, or the descriptor is
    not (or no longer) a connected Unix socket.
    """
    if _SO_PEERCRED is None:
        return None
    try:
        connection = stdlib_socket.fromfd(descriptor, stdlib_socket.AF_UNIX,
                                          stdlib_socket.SOCK_STREAM)
    except (IOError, OSError):  # socket.error is an IOError on Python 2
        return None
    try:
        credentials = connection.getsockopt(stdlib_socket.SOL_SOCKET, _SO_PEERCRED,
                                            _CREDENTIALS.size)
        path = connection.getpeername()
    except (IOError, OSError):
        return None
    finally:
        connection.close()  # a duplicate: libzmq's descriptor stays open
    if not isinstance(path, (six.text_type, six.binary_type)):
        return None  # the number is in use for something else now
    return _CREDENTIALS.unpack(credentials)[1], path


class PeerOwnerCheck(object):
    """Tells whether every connection a ZeroMQ socket made to an ``ipc://`` address
    leads to a process of this user.

    ZeroMQ connects again by itself whenever a connection drops, to whatever
    is bound at the path by then: once the service that bound it has gone,
    another local user may bind the same path (in a shared sticky folder
    such as ``/tmp``), and what it sends would be unpickled as this user.
    The check at start (:func:`check_socket_path`) cannot see that.

    A monitor of the socket reports each connection as it is made, before
    anything that comes over it can be read; :meth:`refusal` looks at the
    process at the other end (``SO_PEERCRED``) and, when that cannot be
    told, at who owns the socket file.  Make it before the socket connects,
    and ask it after each read and before using what was read: if it
    refuses, what the socket holds may come from that process, so the
    socket must be closed with it, unread.
    """

    def __init__(self, socket, address):
        self.address = address
        self.path = ipc_path(address)
        self._socket = socket
        self.monitor = socket.get_monitor_socket(zmq.EVENT_CONNECTED)
        #: The descriptor that signals new connections (for an IOLoop).
        self.fd = self.monitor.getsockopt(zmq.FD)

    def refusal(self):
        """None while every connection so far is to this user's process; else why not."""
        monitor = self.monitor
        # Asked after every message a worker reads: plain ints cost less.
        while monitor.getsockopt(_EVENTS) & _POLLIN:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
            if event['event'] == zmq.EVENT_CONNECTED:
                reason = self._judge(event['value'])
                if reason is not None:
                    return reason
        return None

    def _judge(self, descriptor):
        uid = os.geteuid()
        peer = _unix_peer(descriptor)
        if peer is not None and self._same_file_name(peer[1]):
            if peer[0] == uid:
                return None
            return ('the process listening at %s runs as user %d, not as this service\'s '
                    'user %d' % (self.address, peer[0], uid))
        # The connection went before it could be looked at: the file tells.
        if self.path is None:
            return 'cannot tell whose process listened at %s' % self.address
        try:
            check_socket_path(self.address, binding=False)
        except ValueError as error:
            return str(error)
        if not os.path.exists(self.path):
            return ('%s has gone since the connection to it was made: cannot tell whose '
                    'it was' % self.path)
        return None

    def _same_file_name(self, peer_path):
        # The listener names the path as it bound it (maybe relative): the
        # file name tells this connection from another one that took over
        # the descriptor's number meanwhile.
        if isinstance(peer_path, six.binary_type):
            peer_path = peer_path.decode('utf-8', 'replace')
        if self.path is None:
            return peer_path.startswith(u'\x00')
        return os.path.basename(peer_path) == os.path.basename(self.path)

    def close(self):
        if not self._socket.closed:
            self._socket.disable_monitor()
        self.monitor.close(0)
