"""The sockets and calls of a ZMQWorkerConnection, one IOLoop at a time (private).

A :class:`~toto.zmqworkerconnection.ZMQWorkerConnection` keeps one
:class:`_Channel` per IOLoop that makes calls (and one on its own I/O thread
for callers that run none).  A channel owns, on its loop only, a
:class:`_Link` per worker address -- a ``DEALER`` socket and the monitor of
its disconnections --, the calls it sent and their timeouts, the send queue
of calls waiting for room, and the links to addresses removed a moment ago,
still read for the answers due on them.  The room itself, :class:`_Window`,
is shared by the channels of one connection, per address::

    channel = _Channel(connection, IOLoop.current())
    channel.sync(connection._address_state)   # links as the addresses say
    channel.submit(call)                      # a _Call, answered on this loop

Only :mod:`toto.zmqworkerconnection` uses this module.  Its log lines go to
that module's logger, ``toto.zmqworkerconnection``, as they always have.
"""

from __future__ import absolute_import, division, print_function

import collections
import errno
import logging
import os
import threading
import time

import six
import zmq
from tornado.ioloop import IOLoop, PeriodicCallback

from toto._protocol import DRAIN_DONE, DRAINING_ID

# The public module's logger: applications filter on that name.
logger = logging.getLogger('toto.zmqworkerconnection')

#: Result given to calls that run out of time without retrying.
TIMEOUT_RESULT = {'error': 'timeout'}
#: Result given to calls still waiting when the connection closes.
CLOSED_RESULT = {'error': 'closed'}

# How many answers one pass of the socket handler hands to their callers
# before it lets the IOLoop run other work; the rest go on the next pass.
_RECV_BATCH = 256
# ... and for how long at most (slow callbacks): the socket is read again
# after each pass, so a draining service's notice never waits long unread.
_HANDOVER_SECONDS = 0.05
# How many links to removed addresses one channel keeps reading answers
# from.  Each link is three ZeroMQ sockets, and libzmq refuses a socket past
# 1,023 in a process: however fast addresses come and go, the links kept
# must leave room for everything else's.
_RETIRED_LIMIT = 32
# How long opening a link waits for libzmq to finish closing sockets when it
# is at its socket limit (it frees them on a thread of its own, a little
# after they were closed), and how often it tries again meanwhile.
_SOCKET_LIMIT_WAIT = 2.0
_SOCKET_LIMIT_RETRY = 0.005

# Socket flags and options as plain ints: pyzmq's enum flags cost more per
# call than the send itself.
_NOBLOCK = int(zmq.NOBLOCK)
_SEND_MORE = int(zmq.SNDMORE) | _NOBLOCK
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_RCVMORE = int(zmq.RCVMORE)


def _loop_closed(loop):
    """Tell whether an IOLoop has been closed (it will never run again)."""
    asyncio_loop = getattr(loop, 'asyncio_loop', None)
    if asyncio_loop is not None:
        return asyncio_loop.is_closed()
    return bool(getattr(loop, '_closing', False))


class _Call(object):
    """Book-keeping for one call that has not completed yet."""

    __slots__ = ('message_id', 'payload', 'callback', 'future', 'timeout', 'auto_retry',
                 'deadline', 'link', 'epoch', 'sent_on')

    def __init__(self, message_id, payload, callback, future, timeout, auto_retry,
                 deadline=None):
        self.message_id = message_id
        self.payload = payload
        self.callback = callback
        self.future = future
        self.timeout = timeout
        self.auto_retry = auto_retry
        # When the call expires (retries), counted from invoke(); None for a
        # call that never expires.
        self.deadline = deadline
        # The _Link the call was sent on while it holds room in its window,
        # and the link's connection epoch at that time.
        self.link = None
        self.epoch = 0
        # Every _Link an attempt of the call went out on: only they may
        # answer it (a retry can go to several worker addresses).
        self.sent_on = ()


class _Window(object):
    """How many calls one worker address has on the wire, and who waits.

    ZeroMQ's ``ROUTER`` sockets drop an answer when the queue towards its
    client is full, so a client must not have more calls outstanding at a
    router than that queue holds.  Every channel (every IOLoop and the I/O
    thread) that sends to an address takes room from the same window, so the
    bound holds for the whole connection.  A channel that finds no room
    registers to be woken when some is given back.  ``limit`` 0: no bound.
    """

    __slots__ = ('limit', 'in_flight', '_lock', '_waiting')

    def __init__(self, limit):
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()
        self._waiting = []

    def acquire(self, channel):
        """Take room for one call, or register ``channel`` to be woken."""
        with self._lock:
            if self.in_flight < self.limit or not self.limit:
                self.in_flight += 1
                return True
            if channel not in self._waiting:
                self._waiting.append(channel)
            return False

    def release(self, count=1):
        """Give back the room of ``count`` calls and wake the channels waiting."""
        with self._lock:
            self.in_flight -= count
            if not self._waiting:
                return
            waiting, self._waiting = self._waiting, []
        for channel in waiting:
            channel.wake()

    def take(self, count):
        """Count ``count`` calls already on the wire (a link moved to this window)."""
        with self._lock:
            self.in_flight += count

    def set_limit(self, limit):
        with self._lock:
            self.limit = limit
            waiting, self._waiting = self._waiting, []
        for channel in waiting:
            channel.wake()

    def forget(self, channel):
        with self._lock:
            if channel in self._waiting:
                self._waiting.remove(channel)


class _Descriptor(object):
    """A duplicate of a ZeroMQ socket's descriptor, for an IOLoop to watch.

    ``IOLoop.close(all_fds=True)`` (Tornado's AsyncTestCase does it) closes
    every watched descriptor; closing libzmq's own would abort the process.
    The loop closes this duplicate instead, through :meth:`close`, which
    also tells whether it is still ours to close.
    """

    __slots__ = ('fd',)

    def __init__(self, socket):
        self.fd = os.dup(socket.getsockopt(zmq.FD))

    def fileno(self):
        return self.fd

    def close(self):
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def _open_link_sockets(context, address, curve):
    """A ``DEALER`` connected to ``address`` and the monitor of its disconnections.

    libzmq frees a closed socket's place a little later, on a thread of its
    own: at its socket limit, this waits up to ``_SOCKET_LIMIT_WAIT``
    seconds for places to come free before it gives up.
    """
    deadline = None
    while True:
        try:
            return _try_link_sockets(context, address, curve)
        except zmq.ZMQError as error:
            if error.errno != errno.EMFILE:
                raise
            now = time.time()
            if deadline is None:
                deadline = now + _SOCKET_LIMIT_WAIT
            elif now >= deadline:
                raise
            time.sleep(_SOCKET_LIMIT_RETRY)


def _try_link_sockets(context, address, curve):
    socket = monitor = None
    try:
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            server_key, public_key, secret_key = curve
            socket.setsockopt(zmq.CURVE_SERVERKEY, server_key)
            socket.setsockopt(zmq.CURVE_PUBLICKEY, public_key)
            socket.setsockopt(zmq.CURVE_SECRETKEY, secret_key)
        # Take calls only while the connection is up, so a worker that is
        # down or restarting refuses them at once and they go elsewhere.
        socket.setsockopt(zmq.IMMEDIATE, 1)
        monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            socket.connect(address)
        except zmq.ZMQError as error:
            if error.errno == errno.EMFILE:
                raise
            six.raise_from(ValueError('cannot connect to worker address %r: %s'
                                      % (address, error)), error)
    except BaseException:
        # Nothing half made stays open: at the socket limit, every place counts.
        if monitor is not None:
            socket.disable_monitor()
            monitor.close(0)
        if socket is not None:
            socket.close(0)
        raise
    return socket, monitor


class _Link(object):
    """A ``DEALER`` socket connected to one worker address, on one IOLoop.

    A monitor socket reports when the connection drops: the calls sent over
    it can no longer be answered (the router routes answers by connection),
    so the link's ``epoch`` moves on and their room is given back at once.

    A link is ``draining`` from the worker service's notice that it is
    stopping until the connection drops: no call is sent on it meanwhile,
    the calls already sent are answered, and once none is left on the wire
    the service is told so (it closes the connection only then: libzmq drops
    answers received but not yet read when a connection closes).

    Answers are taken off the socket as soon as the loop gets to it, into
    ``inbox``, and handed to their callers from there a batch at a time: a
    client whose callbacks are slower than its answers arrive is behind in
    its own memory, not in libzmq's, where a closing connection would drop
    them (and where a draining service's notice would wait behind them).
    """

    __slots__ = ('address', 'socket', 'descriptor', 'retired_at', 'check_scheduled', 'window',
                 'monitor', 'monitor_descriptor', 'epoch', 'on_wire', 'draining', 'curve',
                 'inbox')

    def __init__(self, context, loop, address, handler, on_disconnect, window, curve=None):
        socket, monitor = _open_link_sockets(context, address, curve)
        self.descriptor = self.monitor_descriptor = None
        try:
            self.descriptor = _Descriptor(socket)
            self.monitor_descriptor = _Descriptor(monitor)
        except BaseException:
            if self.descriptor is not None:
                self.descriptor.close()
            socket.disable_monitor()
            monitor.close(0)
            socket.close(0)
            raise
        self.address = address
        self.curve = curve
        self.socket = socket
        self.monitor = monitor
        self.retired_at = None
        self.check_scheduled = False
        self.window = window
        self.epoch = 0
        # Calls sent in this epoch that still hold room in the window.
        self.on_wire = 0
        self.draining = False
        # Messages read from the socket, not yet handled (oldest first).
        self.inbox = collections.deque()
        loop.add_handler(self.descriptor, lambda fd, events: handler(self), IOLoop.READ)
        loop.add_handler(self.monitor_descriptor, lambda fd, events: on_disconnect(self),
                         IOLoop.READ)
        # The descriptor signals only once the monitor found its queue empty:
        # look now, or the first event would never be noticed.
        monitor.getsockopt(zmq.EVENTS)

    def close(self, loop):
        if not _loop_closed(loop):
            loop.remove_handler(self.descriptor)
            loop.remove_handler(self.monitor_descriptor)
        self.descriptor.close()
        self.monitor_descriptor.close()
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(0)


class _Channel(object):
    """The sockets and the calls sent through them, owned by one IOLoop.

    Each worker address has a ``DEALER`` socket of its own and calls go to
    them in turn, skipping any whose connection is down or whose address has
    no room in its :class:`_Window`.  Calls that find no room wait in the
    outbox, in the order they were made, and go out as answers come back.
    Everything here runs on the owning loop's thread, so a call made on a
    loop is sent, answered and completed without crossing threads; only
    :meth:`wake` may be called from elsewhere.  Build it on that thread while
    the loop runs.
    """

    def __init__(self, connection, loop):
        self.connection = connection
        self.loop = loop
        self.pending = {}
        # Pending calls with a finite timeout, by timeout value.  Calls of one
        # timeout expire in the order they were made, so a sweep looks only
        # at the front of each queue: its cost follows what expired, not
        # what is pending.
        self.deadlines = {}
        # Calls that never expire but hold room in a window: each gives its
        # room back abs(timeout) after it was sent, so that calls a worker
        # never answers cannot close its window for good.
        self.leases = collections.OrderedDict()
        # Calls waiting for room, oldest first.  Keyed by id, so that a call
        # that expires while it waits leaves at once.
        self.outbox = collections.OrderedDict()
        self.links = []
        self._next_link = 0
        self.generation = None
        self.curve = None
        self.closed = False
        self._wake_scheduled = False
        self._sweep_interval = abs(connection.timeout)
        self._sweeper = None
        # Links to removed addresses, still read for answers already due.
        self._retired = []
        self._start_sweeper()

    # -- connections ------------------------------------------------------

    def sync(self, state):
        """Connect as ``state`` says: a (generation, addresses, curve) tuple."""
        generation, addresses, curve = state
        if generation == self.generation:
            return
        self.generation = None  # until every change below went through
        now = self.loop.time()
        if curve != self.curve:
            # New keys: every link is made again with them.
            addresses_kept = ()
            self.curve = curve
        else:
            addresses_kept = addresses
        for link in [link for link in self.links if link.address not in addresses_kept]:
            self.links.remove(link)
            self._retire(link, now)
        known = set(link.address for link in self.links)
        for address in addresses:
            if address not in known:
                # An address removed a moment ago has its link still open:
                # take it back rather than open sockets for it again.
                link = self._revive(address)
                if link is None:
                    link = _Link(self.connection._context, self.loop, address,
                                 self._on_socket_ready, self._on_disconnect,
                                 self.connection._window(address), self.curve)
                self.links.append(link)
                known.add(address)
        self.generation = generation
        if self.outbox:
            self._flush_outbox()  # an added address may have room

    def _retire(self, link, now):
        """Keep reading ``link`` for answers due on it, and send nothing more on it."""
        link.retired_at = now
        link.window.forget(self)
        self._retired.append(link)
        while len(self._retired) > _RETIRED_LIMIT:
            # The oldest goes first, with the answers still due on it: those
            # calls time out (or retry), and their room is given back now.
            oldest = self._retired.pop(0)
            if oldest.on_wire:
                logger.debug('closing the link to removed address %s with %d calls on it: '
                             'more than %d removed addresses still had calls',
                             oldest.address, oldest.on_wire, _RETIRED_LIMIT)
                self._forget_on_wire(oldest)
            oldest.close(self.loop)

    def _revive(self, address):
        """The retired link to ``address`` made with the keys in use, back in service."""
        for link in self._retired:
            if link.address == address and link.curve == self.curve:
                break
        else:
            return None
        self._retired.remove(link)
        link.retired_at = None
        window = self.connection._window(address)
        if link.window is not window:
            # The address's window was dropped (and made again) while the link
            # was retired: its calls on the wire count in the new one now.
            moved = link.on_wire
            link.window.release(moved)
            window.take(moved)
            link.window = window
        return link

    @staticmethod
    def _forget_on_wire(link):
        # The calls sent on ``link`` so far will never be answered: their room
        # goes back now, and their own release later finds another epoch.
        lost, link.on_wire = link.on_wire, 0
        link.epoch += 1
        link.window.release(lost)

    def _close_retired(self, now):
        # Answers from a removed worker are awaited for twice the longest
        # timeout in use; later ones would find their call timed out anyway.
        longest = max([abs(self.connection.timeout)] + [abs(t) for t in self.deadlines])
        keep = []
        for link in self._retired:
            if self.pending and now - link.retired_at < 2 * longest:
                keep.append(link)
            else:
                link.close(self.loop)
        self._retired = keep

    # -- sending ----------------------------------------------------------

    def submit(self, call):
        """Send a new call (on the channel's thread)."""
        self.pending[call.message_id] = call
        self._schedule(call)
        self._send(call)

    def dispatch(self, call):
        """Send a call registered in ``pending`` by another thread."""
        if call.message_id not in self.pending:
            return  # completed (closed) before it got here
        self.sync(self.connection._address_state)
        self._schedule(call)
        self._send(call)

    def _schedule(self, call):
        timeout = call.timeout
        if timeout <= 0:
            return
        if call.deadline is None:
            call.deadline = self.loop.time() + timeout
        bucket = self.deadlines.get(timeout)
        if bucket is None:
            bucket = self.deadlines[timeout] = collections.OrderedDict()
            self._sweep_at_least_every(timeout)
        bucket[call.message_id] = call

    def _sweep_at_least_every(self, interval):
        if interval < self._sweep_interval:
            # A shorter per-call timeout deserves a sweep that keeps up.
            self._sweep_interval = interval
            self._start_sweeper()

    def _send(self, call):
        outbox = self.outbox
        if outbox:
            # Calls wait their turn; one already waiting keeps its place.
            if call.message_id not in outbox:
                outbox[call.message_id] = call
        elif not self._send_now(call):
            outbox[call.message_id] = call

    def _send_now(self, call):
        """Send on the next link that has room and takes it; False if none does."""
        links = self.links
        count = len(links)
        for _ in range(count):
            index = self._next_link % count
            self._next_link = index + 1
            link = links[index]
            if link.draining:
                continue
            window = link.window
            if not window.acquire(self):
                continue
            socket = link.socket
            try:
                socket.send(b'', _SEND_MORE)
                socket.send(call.message_id, _SEND_MORE)
                socket.send(call.payload, _NOBLOCK)
            except zmq.Again:
                # The first frame is refused while the link has no
                # connection (IMMEDIATE); a later one when the connection
                # drops while the call is being written, and then libzmq
                # takes back the frames it had.  Nothing of the call left.
                window.release()
                continue
            call.link = link
            call.epoch = link.epoch
            if link not in call.sent_on:
                call.sent_on += (link,)
            link.on_wire += 1
            if call.timeout < 0:
                self.leases[call.message_id] = (self.loop.time() - call.timeout, call)
                self._sweep_at_least_every(-call.timeout)
            # The ZeroMQ descriptor only signals changes, and a send can
            # consume the signal that answers arrived: look at the socket
            # again after sending (once per IOLoop iteration).
            self._schedule_pass(link)
            return True
        return False

    def _release(self, call):
        """Give back the room ``call`` holds, if any."""
        link = call.link
        if link is not None:
            call.link = None
            if call.timeout < 0:
                self.leases.pop(call.message_id, None)
            if call.epoch == link.epoch:  # else its connection dropped: given back then
                link.on_wire -= 1
                link.window.release()
                if link.draining and not link.on_wire:
                    self._answer_draining(link, DRAIN_DONE)

    def _on_disconnect(self, link):
        monitor = link.monitor
        if self.closed or monitor.closed:
            return
        dropped = False
        while monitor.getsockopt(_EVENTS) & _POLLIN:
            monitor.recv_multipart(_NOBLOCK)
            dropped = True
        if dropped and link.draining:
            # The stopped service has gone; whatever binds the address next
            # is a new one (ZeroMQ connects again on its own).
            logger.info('worker service at %s has stopped; calls go to it again once it '
                        'is back', link.address)
            link.draining = False
        if dropped and link.on_wire:
            # The router has forgotten this connection and every answer due
            # on it: the calls wait for their timeout (or retry), but their
            # room goes to calls that can still be answered.
            logger.debug('connection to %s dropped with %d calls on it', link.address,
                         link.on_wire)
            self._forget_on_wire(link)

    def _flush_outbox(self):
        outbox = self.outbox
        while outbox:
            message_id = next(iter(outbox))
            if not self._send_now(outbox[message_id]):
                return
            del outbox[message_id]

    def wake(self):
        """Try the outbox again soon: a window has room (from any thread)."""
        if not self._wake_scheduled and not self.closed:
            self._wake_scheduled = True
            try:
                self.loop.add_callback(self._on_wake)
            except Exception as error:  # a loop closed under us must not hurt the waker
                logger.debug('cannot wake the channel of %r: %r', self.loop, error)

    def _on_wake(self):
        self._wake_scheduled = False
        if not self.closed:
            self._flush_outbox()

    # -- receiving --------------------------------------------------------

    def _on_socket_ready(self, link):
        # The descriptor fired; a pass already queued reads the socket anyway
        # (one pass at a time, or a backlog would queue one per iteration).
        if not link.check_scheduled:
            self._handle_events(link)

    def _schedule_pass(self, link):
        if not link.check_scheduled:
            link.check_scheduled = True
            self.loop.add_callback(self._queued_pass, link)

    def _queued_pass(self, link):
        link.check_scheduled = False
        self._handle_events(link)

    def _handle_events(self, link):
        if self.closed:
            return
        socket = link.socket
        more = False if socket.closed else self._read_socket(link)
        inbox = link.inbox
        if inbox:
            until = time.time() + _HANDOVER_SECONDS
            for _ in range(min(len(inbox), _RECV_BATCH)):
                self._on_reply(inbox.popleft(), link)
                if self.closed:  # a callback closed the connection
                    return
                if time.time() > until:
                    break
        # More than one batch: hand on the rest after other callbacks. A
        # "done" sent meanwhile may have taken the descriptor's signal: look.
        if inbox or (not socket.closed and (more or socket.getsockopt(_EVENTS) & _POLLIN)):
            self._schedule_pass(link)
        if self.outbox:
            # Answers gave room back, or this link connected: send what waits.
            self._flush_outbox()

    def _read_socket(self, link):
        """Move what the socket holds into ``link.inbox``; True if it holds more.

        Reading stops one batch past the answers still due on the link, so
        a worker that floods it costs a batch of memory, not more.  A
        draining notice is handled at once, ahead of the answers before it:
        no call goes to that service from now on.
        """
        socket = link.socket
        getsockopt, recv = socket.getsockopt, socket.recv
        inbox = link.inbox
        room = link.on_wire + _RECV_BATCH - len(inbox)
        while room > 0:
            # Asking first is cheaper than a zmq.Again for "nothing there".
            if not getsockopt(_EVENTS) & _POLLIN:
                return False
            frames = [recv(_NOBLOCK)]
            try:
                while getsockopt(_RCVMORE):
                    frames.append(recv(_NOBLOCK))
            except zmq.Again:
                # The connection dropped while libzmq handed this answer
                # over, and it lost the rest: the call waits for its
                # timeout or retry, as if the whole answer had been lost.
                logger.debug('an answer from %s was cut short (%d frames)', link.address,
                             len(frames))
                continue
            room -= 1
            if not frames[0]:
                frames = frames[1:]  # the envelope delimiter
            if not frames:
                logger.debug('dropping an empty answer')
            elif frames[0] == DRAINING_ID:
                self._on_draining(link)
            else:
                inbox.append(frames)
        return True

    def _on_reply(self, frames, link):
        # ``frames``: [message id(, payload)], as _read_socket left them.
        message_id = frames[0]
        call = self.pending.get(message_id)
        if call is None:
            logger.debug('dropping answer for unknown or completed call %r', message_id[:64])
            return
        if link not in call.sent_on:
            # Message ids are not secret: a worker at another address could
            # answer a call it never received.
            logger.debug('dropping answer from %s for call %r, which was not sent there',
                         link.address, message_id[:64])
            return
        del self.pending[message_id]
        self._release(call)
        if self.outbox:
            # A retry waiting for room is answered by an earlier attempt.
            self.outbox.pop(message_id, None)
        if call.deadline is not None:
            bucket = self.deadlines.get(call.timeout)
            if bucket is not None:
                bucket.pop(message_id, None)
        if len(frames) < 2:
            result = None  # acknowledgement of an asynchronous method
        else:
            try:
                result = self.connection._codec.loads(frames[1])
            except Exception as error:
                logger.debug('undecodable answer for call %r: %r', message_id, error)
                result = {'error': error}
        self.complete(call, result)

    def _on_draining(self, link):
        # The service is stopping: it answers what it has, and takes what
        # is already on its way to it (the answer below comes after that).
        if not link.draining:
            logger.info('worker service at %s is stopping: no new calls go to it',
                        link.address)
            link.draining = True
        self._answer_draining(link, b'')
        if not link.on_wire:
            self._answer_draining(link, DRAIN_DONE)

    @staticmethod
    def _answer_draining(link, payload):
        socket = link.socket
        if socket.closed:
            return  # a removed address's link, closed with answers still to hand over
        try:
            socket.send(b'', _SEND_MORE)
            socket.send(DRAINING_ID, _SEND_MORE)
            socket.send(payload, _NOBLOCK)
        except zmq.Again:
            pass  # the connection dropped: the service has gone already

    # -- timeouts ---------------------------------------------------------

    def _start_sweeper(self):
        if self._sweeper is not None:
            self._sweeper.stop()
        self._sweeper = PeriodicCallback(self._sweep, self._sweep_interval * 1000.0)
        self._sweeper.start()

    def _sweep(self):
        now = self.loop.time()
        for timeout, bucket in list(self.deadlines.items()):
            while bucket:
                message_id = next(iter(bucket))
                call = bucket[message_id]
                if call.deadline > now:
                    break
                del bucket[message_id]
                if call.auto_retry:
                    call.deadline = now + timeout
                    bucket[message_id] = call
                    logger.debug('retrying call %r', message_id)
                    # The first attempt counts as lost: its room goes to the
                    # retry, which waits its turn like any new call.
                    self._release(call)
                    self._send(call)
                elif self.pending.pop(message_id, None) is not None:
                    self._release(call)
                    self.outbox.pop(message_id, None)
                    self.complete(call, TIMEOUT_RESULT.copy())
        leases = self.leases
        while leases:
            message_id = next(iter(leases))
            lease_end, call = leases[message_id]
            if lease_end > now:
                break
            del leases[message_id]
            self._release(call)  # the call itself keeps waiting for its answer
        if self._retired:
            self._close_retired(now)
        if self is self.connection._io_channel and self.connection._channels:
            with self.connection._lock:
                self.connection._drop_closed_channels()
        if self.outbox:
            self._flush_outbox()

    # -- completion -------------------------------------------------------

    def complete(self, call, result):
        """Hand ``result`` to the call's Future or callback, exactly once."""
        future = call.future
        if future is not None:
            try:
                if not future.done():
                    future.set_result(result)
            except Exception as error:  # cancelled by the caller meanwhile
                logger.debug('future of call %r not completed: %r', call.message_id, error)
        elif call.callback is not None:
            try:
                call.callback(result)
            except Exception as error:
                self.connection.log_error(error)

    def close(self, result=None):
        """Complete every pending call with ``result`` and release the sockets."""
        if self.closed:
            return
        self.closed = True
        pending = list(self.pending.values())
        self.pending.clear()
        self.deadlines.clear()
        self.outbox.clear()
        if self._sweeper is not None:
            self._sweeper.stop()
        for call in pending:
            self._release(call)
        for link in self.links + self._retired:
            link.window.forget(self)
            link.close(self.loop)
        self.links = []
        self._retired = []
        if result is not None:
            for call in pending:
                self.complete(call, dict(result))
