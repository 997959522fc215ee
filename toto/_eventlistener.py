"""The event listener's thread: it owns the PULL socket and hands events to a dispatcher.

:class:`Listener` binds the event address (a CURVE server when given a
secret key), reads frames in bounded batches, turns each into an event with
an :class:`~toto._eventwire.EventReader` and calls ``dispatch(name, args)``;
whatever one frame holds, the next ones are still read, and what is dropped
is logged at most once per interval (:class:`DropLog`)::

    listener = Listener(context, 'tcp://127.0.0.1:8999', reader, None, dispatch)
    listener.start_and_wait()           # raises if it cannot bind
    ...
    listener.stop(timeout=5.0)
"""

from __future__ import absolute_import, division, print_function

import logging
import threading
import time

import zmq

from toto._eventwire import Refused
from toto._security import shortened

logger = logging.getLogger('toto.events')

#: The ZAP domain of the listener's CURVE authentication.
CURVE_ZAP_DOMAIN = 'toto-events'
# How long the listener waits for frames before it looks whether to stop.
_POLL_MS = 100
# Frames read before the listener looks whether to stop.
_RECV_BATCH = 256
# How long start_and_wait() waits for the bind.
_BIND_TIMEOUT = 10.0
# One warning per interval about dropped events, with a count of the rest.
_DROP_LOG_INTERVAL = 10.0


class Listener(threading.Thread):
    """The daemon thread that owns the PULL socket and hands events to a dispatch function."""

    def __init__(self, context, address, reader, curve_secret, dispatch):
        super(Listener, self).__init__(name='toto-events-listener')
        self.daemon = True
        self._context = context
        self._address = address
        self._reader = reader
        self._curve_secret = curve_secret
        self._dispatch = dispatch
        self._stopping = threading.Event()
        self._bound = threading.Event()
        self._bind_error = None
        self._drops = DropLog('event dropped')

    def start_and_wait(self):
        """Start the thread and return once it has bound, or raise why it could not."""
        self.start()
        if not self._bound.wait(_BIND_TIMEOUT):
            self._stopping.set()
            raise RuntimeError('the event listener did not bind %s within %.0f s'
                               % (self._address, _BIND_TIMEOUT))
        if self._bind_error is not None:
            self.join(_BIND_TIMEOUT)
            raise self._bind_error

    def stop(self, timeout):
        self._stopping.set()
        if self is not threading.current_thread():
            self.join(timeout)
        return not self.is_alive()

    def run(self):
        try:
            socket = self._open_socket()
        except Exception as error:
            self._bind_error = error
            self._bound.set()
            return
        self._bound.set()
        try:
            poller = zmq.Poller()
            poller.register(socket, zmq.POLLIN)
            while not self._stopping.is_set():
                if not poller.poll(_POLL_MS):
                    continue
                try:
                    self._receive_batch(socket)
                except zmq.ContextTerminated:
                    raise
                except Exception:
                    # Whatever one frame does, the next ones are still read.
                    logger.exception('the event listener on %s failed to read an event',
                                     self._address)
        except zmq.ContextTerminated:
            pass
        except Exception:
            logger.exception('the event listener on %s failed and stopped', self._address)
        finally:
            socket.close(0)

    def _open_socket(self):
        socket = self._context.socket(zmq.PULL)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            if self._reader.max_size > 0:
                # ZeroMQ drops (with its connection) any frame over the limit
                # before it is read into memory here.
                socket.setsockopt(zmq.MAXMSGSIZE, self._reader.max_size)
            if '[' in self._address:
                socket.setsockopt(zmq.IPV6, 1)
            if self._curve_secret is not None:
                socket.setsockopt(zmq.ZAP_DOMAIN, CURVE_ZAP_DOMAIN.encode('ascii'))
                socket.setsockopt(zmq.CURVE_SERVER, 1)
                socket.setsockopt(zmq.CURVE_SECRETKEY, self._curve_secret)
                socket.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(self._curve_secret))
            socket.bind(self._address)
        except Exception:
            socket.close(0)
            raise
        return socket

    def _receive_batch(self, socket):
        for _ in range(_RECV_BATCH):
            try:
                frame = socket.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if frame.more:
                # Not a 1.0.12 event (one frame); read the rest and drop it.
                while frame.more:
                    frame = socket.recv(copy=False)
                self._drops.report('a message of several frames (from %s)' % _peer(frame))
                continue
            event = self._decode(frame)
            if event is not None:
                self._dispatch(event[0], event[1])

    def _decode(self, frame):
        try:
            event = self._reader.read(frame.bytes)
        except Exception as error:
            reason = shortened(str(error), 200)
            if not isinstance(error, Refused):
                reason = '%s: %s' % (type(error).__name__, reason)
            self._drops.report('%s (from %s)' % (reason, _peer(frame)))
            return None
        if not isinstance(event, dict) or 'name' not in event or 'args' not in event:
            self._drops.report('not an event, i.e. a dict with name and args (from %s)'
                               % _peer(frame))
            return None
        try:
            hash(event['name'])
        except TypeError:
            self._drops.report('the event name is a %s (from %s)'
                               % (type(event['name']).__name__, _peer(frame)))
            return None
        return event['name'], event['args']

class DropLog(object):
    """Warns about dropped events: the first at once, then at most one summary per interval."""

    def __init__(self, what):
        self.what = what
        self._lock = threading.Lock()
        self._last = None
        self._unreported = 0

    def report(self, reason):
        with self._lock:
            now = time.time()
            if self._last is not None and now - self._last < _DROP_LOG_INTERVAL:
                self._unreported += 1
                return
            self._last = now
            unreported, self._unreported = self._unreported, 0
        logger.warning('%s: %s%s', self.what, reason,
                       ' (and %d more since the last warning)' % unreported if unreported else '')

def start_authenticator(context, secret, authorized_keys):
    """Start the ZAP handler that lets only known CURVE keys send events.

    The allowed keys are set before it returns (a directory is read now), so
    no connection is ever judged by an unconfigured handler.
    """
    import zmq.auth
    from zmq.auth.thread import ThreadAuthenticator
    if authorized_keys:
        allowed = set(zmq.auth.load_certificates(authorized_keys))
    else:
        allowed = set([zmq.curve_public(secret)])
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve_callback(CURVE_ZAP_DOMAIN, _KnownKeys(allowed))
    return authenticator

class _KnownKeys(object):
    """ZAP credentials provider: a fixed set of Z85 public keys."""

    def __init__(self, keys):
        self._keys = set(key if isinstance(key, bytes) else key.encode('ascii')
                         for key in keys)

    def callback(self, domain, key):
        if not isinstance(key, bytes):
            key = key.encode('ascii')
        allowed = key in self._keys
        if not allowed:
            logger.warning('event sender with an unknown CURVE key refused: %s',
                           key.decode('ascii'))
        return allowed

def _peer(frame):
    try:
        return frame.get('Peer-Address') or 'an unknown peer'
    except Exception:
        return 'an unknown peer'
