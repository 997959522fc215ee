"""Stopping one TotoServer process without cutting off the requests it is answering.

On SIGTERM or Ctrl-C a server process stops accepting connections, asks its
websocket clients to go (close code 1001), lets every request already taken
be answered (a long poll included) for up to ``--shutdown_timeout``
seconds, then closes the connections left and stops its IOLoop::

    stopping = GracefulStop(io_loop, http_server, application, timeout=30)
    stopping.take_signals()       # SIGTERM, and SIGINT unless it is ignored
    io_loop.start()               # returns once the stop is over

:class:`GracefulStop` only reads what :class:`toto._webapp.ServerApplication`
tracks.  A signal that comes while the process is stopping already is
ignored: the parent process, which sent it or got it too, is the one that
stops its processes at once (on a second signal, or when the time is up).
"""

from __future__ import absolute_import, division, print_function

import functools
import logging
import signal
import time

from tornado import gen

logger = logging.getLogger('toto.server')

# How often a stopping process looks at what is left to answer.
_CHECK_INTERVAL = 0.02
# How long closing the connections left (idle ones) may take at the end.
_CLOSE_WAIT = 1.0


class GracefulStop(object):
    """Stop ``http_server`` and ``io_loop`` once ``application`` has answered what it took.

    ``timeout`` bounds the wait in seconds; ``on_stopped`` (optional) is
    called on the loop just before it stops.
    """

    def __init__(self, io_loop, http_server, application, timeout, name='server',
                 on_stopped=None):
        self.io_loop = io_loop
        self.http_server = http_server
        self.application = application
        self.timeout = timeout
        self.name = name
        self.on_stopped = on_stopped
        self.reason = None
        self._deadline = None
        self._done = False

    @property
    def stopping(self):
        return self.reason is not None

    def take_signals(self):
        """Stop on SIGTERM, and on SIGINT unless this process ignores it.

        Call it on the main thread.  A program started in the background
        ignores SIGINT; it keeps ignoring it.
        """
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
            signals.append(signal.SIGINT)
        for signum in signals:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        reason = 'SIGTERM' if signum == signal.SIGTERM else 'SIGINT'
        _call_from_signal(self.io_loop, functools.partial(self.begin, reason))

    def begin(self, reason):
        """Begin the stop (on the loop); later calls only log that it is under way."""
        if self.reason is not None:
            logger.info('%s: %s while stopping already (%s): the stop goes on', self.name,
                        reason, self.reason)
            return
        self.reason = reason
        self._deadline = time.time() + max(0.0, self.timeout)
        self.http_server.stop()
        sockets = self.application.close_websockets()
        requests = max(0, self.application.unfinished() - sockets)
        logger.info('%s stopping (%s): no new connections; %d request%s to answer and %d '
                    'websocket%s closing, for up to %g s (--shutdown_timeout)', self.name,
                    reason, requests, _plural(requests), sockets, _plural(sockets),
                    self.timeout)
        self._check()

    def _check(self):
        left = self.application.unfinished()
        if left and time.time() < self._deadline:
            self.io_loop.call_later(_CHECK_INTERVAL, self._check)
            return
        if left:
            logger.warning('%s: --shutdown_timeout (%g s) is over with %d request%s or '
                           'websocket%s unfinished: closing them', self.name, self.timeout,
                           left, _plural(left), _plural(left))
        else:
            logger.info('%s: every request taken is answered', self.name)
        self._close_connections()

    def _close_connections(self):
        # What is left is idle keep-alive connections (or, after the
        # timeout, the ones still unanswered).
        closing = gen.convert_yielded(self.http_server.close_all_connections())
        self.io_loop.add_future(closing, lambda future: self._stop_loop())
        self.io_loop.call_later(_CLOSE_WAIT, self._stop_loop)

    def _stop_loop(self):
        if self._done:
            return
        self._done = True
        if self.on_stopped is not None:
            try:
                self.on_stopped()
            except Exception:
                logger.exception('%s: cleaning up after the stop failed', self.name)
        self.io_loop.stop()


def _plural(count):
    return '' if count == 1 else 's'


def _call_from_signal(io_loop, callback):
    asyncio_loop = getattr(io_loop, 'asyncio_loop', None)
    if asyncio_loop is not None:
        # Tornado 6.  Its add_callback, called on the loop's own thread (as a
        # signal handler is), only queues the callback without waking the
        # loop, which may then wait in select() for ever; and its
        # add_callback_from_signal is deprecated.  call_soon_threadsafe
        # wakes it.
        asyncio_loop.call_soon_threadsafe(callback)
    else:
        # Tornado 5 on Python 2: its own loop wakes itself here.
        io_loop.add_callback_from_signal(callback)
