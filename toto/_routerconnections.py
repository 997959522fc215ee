"""The router's client connections: which connection each client uses, and a cap on them.

libzmq accepts every connection a ROUTER socket is offered and has no cap
of its own.  The router (:class:`toto._dispatch.LoadBalancer`) counts them
from the frontend's monitor, learns from each message (``ZMQ_SRCFD``) which
connection it came through, and past its cap closes the connection that
has gone longest without a call::

    monitor = monitor_socket(frontend)
    connections = Connections(cap=900)
    connections.endpoint = frontend.getsockopt(zmq.LAST_ENDPOINT)
    ...
    connections.accepted(fd)                 # a monitor event
    connections.learn(client, frame.get(SRCFD))
    connections.called(fd)
    connections.trim()                       # closes what is past the cap
"""

from __future__ import absolute_import, division, print_function

import collections
import os
import socket
import struct

import six
import zmq

# The descriptor of the connection a message came through (libzmq's
# ZMQ_SRCFD: deprecated, and still the only way to tell).
SRCFD = int(getattr(zmq, 'SRCFD', 2))
# Not EVENT_ACCEPT_FAILED: out of descriptors, libzmq tries to accept again
# at once, and says so each time (a flood of events).
_MONITORED = int(zmq.EVENT_ACCEPTED) | int(zmq.EVENT_DISCONNECTED)
# Events read in one go before the connections past the cap are closed.
MONITOR_BATCH = 1024
_HAS_MOVE_TO_END = hasattr(collections.OrderedDict, 'move_to_end')


class Connections(object):
    """The client connections the router has open, by descriptor, and the cap on them.

    libzmq accepts every connection and has no cap of its own; past the
    process's file limit it cannot even accept its worker processes'
    connections (an ``ipc://`` listener then aborts the process).  The
    frontend's monitor tells of each connection (its descriptor) as it is
    accepted and as it ends; each message tells which descriptor it came
    through.  Past ``cap`` connections, :meth:`trim` closes the one that has
    gone longest without a call, one that never sent any first: peers that
    connect and never call are the first to go, clients that call are kept.

    A connection is closed with ``shutdown()`` on its descriptor, which
    libzmq then closes as if the peer had gone, and only once it is sure
    that the descriptor still is that connection: one to the frontend's
    address (``endpoint``, set once it is bound), from the same peer.
    """

    def __init__(self, cap):
        self.cap = cap
        #: The frontend's bound address (its ZMQ_LAST_ENDPOINT).
        self.endpoint = None
        # descriptor -> (local, peer address): no call yet, oldest first.
        self._quiet = collections.OrderedDict()
        # descriptor -> (local, peer address): least recently calling first.
        self._calling = collections.OrderedDict()
        # client identity -> descriptor, and back.
        self.fd_of = {}
        self._clients_on = {}
        #: Connections closed to keep within the cap.
        self.closed = 0

    def __len__(self):
        return len(self._quiet) + len(self._calling)

    def accepted(self, fd):
        if fd not in self._quiet and fd not in self._calling:
            self._quiet[fd] = _addresses_of(fd, self.endpoint)

    def ended(self, fd):
        self._quiet.pop(fd, None)
        self._calling.pop(fd, None)
        self._forget_clients_on(fd)

    def learn(self, client, fd):
        """``client``'s messages come through ``fd``."""
        self.fd_of[client] = fd
        self._clients_on.setdefault(fd, []).append(client)

    def called(self, fd):
        """A call came through ``fd``: it is the last to be closed now."""
        calling = self._calling
        if fd in calling:
            if _HAS_MOVE_TO_END:
                calling.move_to_end(fd)
            else:
                calling[fd] = calling.pop(fd)
            return
        addresses = self._quiet.pop(fd, None)
        if addresses is None:
            # Its accept has not been read from the monitor yet (or it has
            # ended already: then it is not counted).
            addresses = _addresses_of(fd, self.endpoint)
            if addresses is None:
                return
        calling[fd] = addresses

    def trim(self):
        """Close the connections past the cap; return how many were closed."""
        closed = 0
        for table in (self._quiet, self._calling):
            while table and len(self) > self.cap:
                fd, addresses = table.popitem(last=False)
                self._forget_clients_on(fd)
                if addresses is not None and _shut_down(fd, addresses):
                    closed += 1
        self.closed += closed
        return closed

    def _forget_clients_on(self, fd):
        for client in self._clients_on.pop(fd, ()):
            if self.fd_of.get(client) == fd:
                del self.fd_of[client]


def _names_py3(fd):
    """(family, local, peer address) of the socket ``fd``, or None."""
    try:
        wrapped = socket.socket(fileno=fd)
    except (OSError, ValueError):
        return None  # closed, or not a socket
    try:
        return wrapped.family, wrapped.getsockname(), wrapped.getpeername()
    except OSError:
        return None
    finally:
        wrapped.detach()  # the descriptor is libzmq's: not closed here


def _shut_down_py3(fd):
    try:
        wrapped = socket.socket(fileno=fd)
    except (OSError, ValueError):
        return False
    try:
        wrapped.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        wrapped.detach()


# Python 2 can only wrap a socket around a duplicate of its descriptor, and
# there is none to spare at the file limit: it asks the C library directly.
# The addresses are then the raw (Linux) sockaddr structures.
_SOCKADDR_SIZE = 128


def _names_py2(fd):
    import ctypes
    libc = _libc()
    raw = []
    for function in (libc.getsockname, libc.getpeername):
        address = ctypes.create_string_buffer(_SOCKADDR_SIZE)
        size = ctypes.c_uint(_SOCKADDR_SIZE)
        if function(fd, address, ctypes.byref(size)) != 0:
            return None
        raw.append(address.raw[:size.value])
    family = struct.unpack('=H', raw[0][:2])[0]
    if family in (socket.AF_INET, socket.AF_INET6):
        local = (None, struct.unpack('>H', raw[0][2:4])[0])  # the port, as Python 3 has it
    else:
        local = raw[0][2:].rstrip(b'\0')
    return family, local, raw[1]


def _shut_down_py2(fd):
    return _libc().shutdown(fd, socket.SHUT_RDWR) == 0


_LIBC = []


def _libc():
    if not _LIBC:
        import ctypes
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


_names = _names_py3 if six.PY3 else _names_py2
_shut_down_socket = _shut_down_py3 if six.PY3 else _shut_down_py2


def _addresses_of(fd, endpoint):
    """(local, peer) address of ``fd`` if it is a connection to ``endpoint``, else None."""
    names = _names(fd)
    if names is None:
        return None
    family, local, peer = names
    if not _is_local_address(family, local, endpoint):
        return None  # another socket of the process (a worker's connection)
    return local, peer


def _is_local_address(family, local, endpoint):
    """Whether ``local`` (a getsockname() of ``family``) is an address of ``endpoint``."""
    if endpoint is None:
        return False
    if endpoint.startswith('tcp://'):
        port = endpoint.rpartition(':')[2]
        return family in (socket.AF_INET, getattr(socket, 'AF_INET6', None)) and \
            port.isdigit() and local[1] == int(port)
    if endpoint.startswith('ipc://'):
        path = endpoint[len('ipc://'):]
        if isinstance(local, bytes):
            local = local.decode('utf-8', 'replace')
        if path.startswith('@'):  # Linux's abstract namespace
            path = '\0' + path[1:]
        return family == getattr(socket, 'AF_UNIX', None) and local == path
    return False


def _shut_down(fd, addresses):
    """Shut the connection ``fd`` down if it still has ``addresses``; True if done."""
    names = _names(fd)
    if names is None or names[1:] != addresses:
        return False  # closed meanwhile: the descriptor is another's now
    return _shut_down_socket(fd)


def monitor_socket(frontend):
    """A PAIR that receives the frontend's connection events, none of them dropped.

    ``get_monitor_socket()`` would drop events past ZeroMQ's default queue
    (a burst of connections), and the count of connections would drift.
    """
    address = 'inproc://toto-router-monitor-%d-%d' % (os.getpid(), id(frontend))
    frontend.monitor(address, _MONITORED)
    monitor = frontend.context.socket(zmq.PAIR)
    monitor.setsockopt(zmq.RCVHWM, 0)
    monitor.setsockopt(zmq.LINGER, 0)
    monitor.connect(address)
    return monitor
