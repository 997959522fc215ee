"""Load-aware dispatch: the worker service's router sends each call to a free worker.

Clients see the router of the original package: a ``ROUTER`` that takes
three-frame calls (``b''``, message id, payload) and sends answers back the
same way.  Behind it, worker processes connect ``DEALER`` sockets and tell
the router, with every answer, how many calls they have finished and how
many unfinished calls they accept at once.  The router sends each call to
the worker with the fewest unfinished calls (among equals, the one that
finished a call last, so a worker stuck in a slow call is chosen last), and
holds calls, oldest first, while every worker is full::

    balancer = LoadBalancer(frontend, backend, max_message_size=1 << 20)
    balancer.run()          # until the process is stopped

The messages between a worker and the router (the router's ``ROUTER``
adds and strips the worker's identity)::

    router -> worker   [envelope, payload]              a call
    worker -> router   [state]                          ready / heartbeat
                       [state + envelope, payload]      an answer
                       [state + envelope]               an acknowledgement

``envelope`` is the length of the client's identity (1 byte), that
identity, and the call's message id: the worker hands it back as it came.
``state`` is 11 bytes: the protocol version (1 byte, 1), the calls the
worker has finished since it started (8 bytes, big-endian) and the
unfinished calls it accepts (2 bytes, big-endian).  A worker sends it when
it starts, with every answer, when a call ends without an answer (an
asynchronous method's work), and once a second.  The router stops sending
to a worker it has not heard from for three seconds, and forgets it after
a minute; the calls that worker held time out or are retried by their
clients, as with any lost answer.

A worker silent for three seconds gets ``[PROBE]``, one frame, once a
second, which it ignores: when the send fails, its connection has closed and
the router forgets it at once.

A worker that is leaving (a reload, a shutdown) says it accepts 0 calls;
the router then sends it no more and answers ``[RELEASED]``, one frame.
Every call the router sent that worker was sent before that frame, so once
the worker has it and has answered what it holds, it can go without losing
a call.

Draining, for a stop or a restart: the router sends every client it knows
an answer under the message id :data:`DRAINING_ID`, which no call uses
(clients of the original package drop it as an answer to a call they do
not know).  This package's clients send no more calls on that connection
and answer with a call of the same id and an empty payload (everything they
sent before it was read before it), then, once they have read the answers
to every call they sent there, with one whose payload is ``done``.  The
router goes on serving calls, and returns from :meth:`LoadBalancer.run`
once every call it took has finished and every client it told has said
``done``, has gone, or (a client that never answers the notice) has stayed
silent for :data:`DRAIN_QUIET` seconds.  A client that answered the notice
but never says ``done`` is waited for :data:`DRAIN_DONE_WAIT` seconds after
the last answer the router sent it.  Closing a connection earlier could
lose answers: libzmq drops what a client had received but not yet read
when the connection closes.

Against clients that do not play by these rules, the router:

* keeps at most ``max_clients`` connections open (counted from the
  frontend's monitor; libzmq has no cap of its own): past it, it closes the
  one that has gone longest without a call, one that never sent any first;
* holds calls within ``max_held_bytes`` as well as :data:`MAX_HELD_CALLS`,
  and hands them to the workers in turn, one client's call after another's,
  so one client's flood does not make the others' calls wait behind it;
* never copies more than ``max_message_size`` of a call it refuses for its
  size (libzmq has already buffered the whole message: see
  ``docs/security.rst``);
* reads at most :data:`CLIENT_BATCH` client messages before it turns to the
  workers' answers, so answers flow during a flood;
* logs each kind of refusal at most once per
  :data:`toto._methods.LOG_INTERVAL` seconds, with a count.
"""

from __future__ import absolute_import, division, print_function

import collections
import json
import logging
import os
import struct
import time

import six
import zmq

from toto import _metrics
from toto._methods import RateLimitedLog
from toto._protocol import (CONTROL_PREFIX, DRAIN_DONE, DRAINING_ID, HEARTBEAT_INTERVAL,
                            PROBE, PROTOCOL_VERSION, RELEASED, STATUS, send_frames)
from toto._protocol import STATE as _STATE
from toto._protocol import STATE_SIZE as _STATE_SIZE
from toto._routerconnections import MONITOR_BATCH, SRCFD, Connections, monitor_socket
from toto._saturation import SaturationLog
from toto.exceptions import ERROR_SERVER

logger = logging.getLogger('toto.worker.router')

#: A worker silent for this long gets no more calls until it speaks again.
WORKER_TIMEOUT = 3 * HEARTBEAT_INTERVAL
#: A worker silent for this long is forgotten.
WORKER_FORGET_AFTER = 60.0
#: Calls the router holds while every worker is busy before it stops reading
#: clients (they then wait in the clients' own queues).
MAX_HELD_CALLS = 100000
#: Bytes of held calls (see :data:`HELD_CALL_OVERHEAD`) past which the router
#: stops reading clients, unless it is given another budget.
MAX_HELD_BYTES = 256 * 1024 * 1024
#: What a held call is counted as besides its frames: the Python objects
#: that hold it.
HELD_CALL_OVERHEAD = 200
#: Client messages the router reads in one pass before it turns to the
#: workers' answers: a flood of messages does not hold answers back.
CLIENT_BATCH = 256
#: Worker messages the router reads in one pass before it turns to clients.
WORKER_BATCH = 1024
#: A draining router waits this long for a told client that neither answers
#: the notice nor sends calls (a client of the original package, or one that
#: has gone) before it stops waiting for it; it tells the clients that have
#: not said ``done`` again this often, which finds the ones that have gone.
DRAIN_QUIET = 1.0
#: A draining router waits this long after its last answer to a client
#: that answered the notice but has not said ``done`` (it is reading its
#: answers, or never will say it) before it stops waiting for it.
DRAIN_DONE_WAIT = 2 * DRAIN_QUIET
#: A client the router has not heard from for this long is not told about
#: a drain (its connection is most likely gone).
CLIENT_MEMORY = 600.0

# Plain ints: with pyzmq's enum flags, send_multipart's flag arithmetic
# costs more than the sends themselves.
_SNDMORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class _Worker(object):
    """What the router knows of one worker process."""

    __slots__ = ('identity', 'sent', 'finished', 'window', 'last_seen', 'progress', 'live')

    def __init__(self, identity, finished, now):
        self.identity = identity
        # Counted from the worker's own count, so a router that starts after
        # its workers (or a worker the router had forgotten) starts even.
        self.sent = self.finished = finished
        self.window = 0
        self.last_seen = now
        # When it last finished a call, as a tick of the router's own counter.
        self.progress = 0
        self.live = True


class _HeldCalls(object):
    """Calls waiting for a worker, taken in turn from each client that has some.

    A client's calls keep their order; the clients take turns, so a call
    waits behind at most one call of each other client, however many one
    client has sent.  ``count`` and ``bytes`` (the frames of each call and
    :data:`HELD_CALL_OVERHEAD`) are what the router's budgets compare.
    """

    __slots__ = ('_by_client', '_turns', 'count', 'bytes')

    def __init__(self):
        self._by_client = {}
        # Clients with held calls, the next one to send for first.
        self._turns = collections.deque()
        self.count = 0
        self.bytes = 0

    def __len__(self):
        return self.count

    def __bool__(self):
        return self.count > 0

    __nonzero__ = __bool__

    def append(self, call):
        client = call[0]
        calls = self._by_client.get(client)
        if calls is None:
            calls = self._by_client[client] = collections.deque()
            self._turns.append(client)
        calls.append(call)
        self.count += 1
        self.bytes += _held_size(call)

    def first(self):
        """The call whose turn it is (there must be one)."""
        return self._by_client[self._turns[0]][0]

    def pop_first(self):
        """Remove the call :meth:`first` returned; its client's turn goes to the end."""
        client = self._turns.popleft()
        calls = self._by_client[client]
        call = calls.popleft()
        if calls:
            self._turns.append(client)
        else:
            del self._by_client[client]
        self.count -= 1
        self.bytes -= _held_size(call)
        return call


def _held_size(call):
    return len(call[0]) + len(call[1]) + len(call[2]) + HELD_CALL_OVERHEAD


class LoadBalancer(object):
    """Move calls from ``frontend`` (clients' ROUTER) to ``backend`` (workers' ROUTER).

    A call goes to the worker with the fewest unfinished calls that has
    room in its window; while none has, the router holds it, up to
    :data:`MAX_HELD_CALLS` calls and ``max_held_bytes`` bytes, and then
    stops reading clients until a worker takes one.  A call that does not
    have a call's frames, or whose frames add up to more than
    ``max_message_size`` bytes, is dropped before it reaches any worker.
    ``max_clients`` is the most client connections kept open (None: no
    cap).
    """

    def __init__(self, frontend, backend, max_message_size=None, saturation_warning_after=5.0,
                 codec=None, control=None, max_held_bytes=None, max_clients=None):
        # Encodes the error answer to a call with a message id but not a
        # call's frames (as the workers of the queue protocol answer it).
        self.codec = codec
        self.frontend = frontend
        self.backend = backend
        self.max_message_size = max_message_size if max_message_size and \
            max_message_size > 0 else None
        self.max_held_bytes = max_held_bytes if max_held_bytes and max_held_bytes > 0 \
            else MAX_HELD_BYTES
        self.workers = {}
        # The workers calls may go to (not silent), in the order they joined.
        self._live = []
        # Calls waiting for a worker: (client, message id, payload).
        self.held = _HeldCalls()
        self.refused = 0
        # Lines a peer can make the router log: one per kind and interval.
        self._log = RateLimitedLog(logger)
        self.answered = 0
        self._ticks = 0
        self._saturation = SaturationLog(saturation_warning_after, 'router')
        self._queueing = False
        self._warned_no_workers = False
        self.started = time.time()
        # A DEALER to the service's control socket, or None: commands come
        # in there (status, drain) and status documents go out.
        self.control = control
        # Clients by identity, and when each last sent a call: the ones to
        # tell when the router drains.
        self.clients = {}
        self.draining = False
        # Draining: when each client was first and last told; the ones that
        # answered the notice, the ones that have all their answers, and the
        # ones whose connection has gone.
        self._told = {}
        self._retold = {}
        self._acked = set()
        self._done = set()
        self._gone = set()
        # Draining: when the router last sent each client an answer.
        self._answered_at = {}
        # Client connections open now, from the frontend's monitor.
        self._connections = Connections(max_clients if max_clients and max_clients > 0
                                         else float('inf'))
        self._monitor = monitor_socket(frontend)
        # Set when the service serves metrics (--metrics_port), else None.
        self._metrics = _metrics.for_router()

    @property
    def connections(self):
        """Client connections open now."""
        return len(self._connections)

    def run(self):
        """Route calls until the router has drained (see :meth:`drain`)."""
        endpoint = self.frontend.getsockopt(zmq.LAST_ENDPOINT)
        self._connections.endpoint = endpoint.decode('utf-8', 'replace') \
            if isinstance(endpoint, bytes) else endpoint
        try:
            self._run()
        finally:
            self.frontend.disable_monitor()
            self._monitor.close(0)

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.backend, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        if self.control is not None:
            poller.register(self.control, zmq.POLLIN)
        reading_clients = False
        next_check = time.time() + HEARTBEAT_INTERVAL
        moved = 0
        held = self.held
        while True:
            want_clients = held.count < MAX_HELD_CALLS and held.bytes < self.max_held_bytes
            if want_clients != reading_clients:
                if want_clients:
                    poller.register(self.frontend, zmq.POLLIN)
                else:
                    poller.unregister(self.frontend)
                reading_clients = want_clients
            if not moved:
                # Wait only once a pass found nothing to move: while busy,
                # trying both sockets again costs less than a poll.
                ready = dict(poller.poll((DRAIN_QUIET / 10 if self.draining
                                          else HEARTBEAT_INTERVAL) * 1000))
                if self._monitor in ready:
                    self._read_monitor()
                if self.control is not None and self.control in ready:
                    self._read_control()
            else:
                # Busy: connections come and go meanwhile, and are counted
                # before their calls are.
                self._read_monitor()
            moved = self._read_workers()
            if reading_clients:
                moved += self._read_clients()
            self._watch_saturation()
            now = time.time()
            if now >= next_check:
                # While busy the loop polls nothing: look at these here.
                self._read_monitor()
                if self.control is not None:
                    self._read_control()
                self._check_workers(now)
                self._log.flush()
                if self._metrics is not None:
                    self._metrics.update(self)
                next_check = now + HEARTBEAT_INTERVAL
            if self.draining and self._drained(now):
                logger.info('router: drained: every call answered, %d clients told',
                            len(self._told))
                return

    # -- control, status and draining ---------------------------------------

    def status(self):
        """What the router is doing now, as a dict of plain values."""
        unfinished = [worker.sent - worker.finished for worker in self.workers.values()]
        cap = self._connections.cap
        return {'pid': os.getpid(), 'uptime': time.time() - self.started,
                'calls_queued': len(self.held), 'calls_queued_bytes': self.held.bytes,
                'calls_in_workers': sum(unfinished),
                'clients_connected': self.connections,
                'clients_limit': cap if cap != float('inf') else None,
                'clients_closed': self._connections.closed, 'workers': len(self.workers),
                'workers_ready': len(self._live),
                'workers_busy': sum(1 for count in unfinished if count > 0),
                'answered': self.answered, 'refused': self.refused,
                'draining': self.draining}

    def drain(self):
        """Tell the clients to send no more calls, and end once all are answered."""
        if self.draining:
            return
        self.draining = True
        # A send to a client that has gone now fails instead of vanishing:
        # that is how the router knows not to wait for it.
        self.frontend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        now = time.time()
        for client, last_call in list(self.clients.items()):
            if now - last_call < CLIENT_MEMORY:
                self._tell_draining(client, now)
        logger.info('router: draining: %d clients told to send no more calls, %d calls '
                    'to answer', len(self._told), len(self.held) + sum(
                        worker.sent - worker.finished for worker in self.workers.values()))

    def _tell_draining(self, client, now):
        if client in self._done or client in self._gone:
            return
        told = self._retold.get(client)
        if told is not None and now - told < DRAIN_QUIET:
            return
        self._told.setdefault(client, now)
        self._retold[client] = now
        try:
            send_frames(self.frontend, [client, b'', DRAINING_ID, b''])
        except zmq.ZMQError:  # EHOSTUNREACH: its connection has closed
            self._gone.add(client)

    def _drained(self, now):
        if self.held:
            return False
        # Silent workers too: one busy in a long call still owes its answer.
        for worker in self.workers.values():
            if worker.sent != worker.finished:
                return False
        clients = self.clients
        answered_at = self._answered_at
        waiting = False
        for client, told in list(self._told.items()):
            self._tell_draining(client, now)  # finds the ones that have gone
            if client in self._done or client in self._gone:
                continue
            if client in self._acked:
                # It answered the notice and may still be reading its
                # answers, all sent by now: it has a while after the last
                # one to say "done", not for ever.
                if now - max(told, clients.get(client, 0),
                             answered_at.get(client, 0)) < DRAIN_DONE_WAIT:
                    waiting = True
            elif now - max(told, clients.get(client, 0)) < DRAIN_QUIET:
                # One that never answered is an original client, or has gone.
                waiting = True
        return not waiting

    def _read_control(self):
        control = self.control
        while True:
            try:
                message = control.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            if len(message) != 2 or message[0] != CONTROL_PREFIX:
                continue
            if message[1] == STATUS:
                document = json.dumps(self.status()).encode('utf-8')
                try:
                    control.send_multipart([STATUS, document], _NOBLOCK)
                except zmq.Again:
                    pass  # the service is not there to ask
            elif message[1] == b'drain':
                self.drain()

    def _read_monitor(self):
        monitor = self._monitor
        connections = self._connections
        closed = 0
        while True:
            count = 0
            while count < MONITOR_BATCH and monitor.getsockopt(_EVENTS) & _POLLIN:
                event = monitor.recv_multipart(_NOBLOCK)
                count += 1
                kind, fd = struct.unpack('=HI', event[0][:6])
                if kind == zmq.EVENT_ACCEPTED:
                    connections.accepted(fd)
                elif kind == zmq.EVENT_DISCONNECTED:
                    connections.ended(fd)
            # A burst of connections is cut down as it comes in, before it
            # takes every descriptor the process may have.
            closed += connections.trim()
            if count < MONITOR_BATCH:
                break
        if closed:
            self._log.log(logging.WARNING, 'connections',
                          'router: %d client connections open, the most it keeps '
                          '(--max_clients, the file limit): closed %d (%d so far), those '
                          'that went longest without a call (never sent one) first',
                          len(connections), closed, connections.closed)

    def _watch_saturation(self):
        # Calls held without a break mean every worker has been busy.
        if self.held:
            if not self._queueing:
                self._queueing = True
                self._saturation.start(self.answered)
            self._saturation.check(self.answered)
        elif self._queueing:
            self._queueing = False
            self._saturation.stop(self.answered)

    # -- clients --------------------------------------------------------------

    def _read_clients(self):
        """Take in the clients' calls; return how many messages were read.

        Reads at most :data:`CLIENT_BATCH` messages, and stops once the held
        calls reach their budget.  Frames are copied only while a message
        still could be a call within ``max_message_size``: the rest of a
        larger one is read (libzmq holds it until then) and let go.
        """
        frontend = self.frontend
        recv = frontend.recv
        getsockopt = frontend.getsockopt
        held = self.held
        clients = self.clients
        connections = self._connections
        fd_of = connections.fd_of
        limit = self.max_message_size
        max_bytes = self.max_held_bytes
        draining = self.draining
        now = time.time()
        count = 0
        while count < CLIENT_BATCH and held.count < MAX_HELD_CALLS and held.bytes < max_bytes:
            try:
                client = recv(_NOBLOCK)
            except zmq.Again:
                break
            count += 1
            frames = [client]
            size = left_out = 0
            fd = fd_of.get(client)
            new_client = fd is None
            while getsockopt(_RCVMORE):
                if not new_client and len(frames) < 4 and (limit is None or size <= limit):
                    frame = recv()
                    size += len(frame)
                    frames.append(frame)
                    continue
                frame = recv(copy=False)
                size += len(frame)
                if new_client:
                    new_client = False
                    fd = frame.get(SRCFD)
                    connections.learn(client, fd)
                if len(frames) < 4 and (limit is None or size <= limit):
                    frames.append(frame.bytes)
                else:
                    left_out += 1
            call = self._check_call(frames, size, left_out)
            if call is None:
                continue
            if fd is not None:
                connections.called(fd)
            clients[client] = now
            if draining:
                self._tell_draining(client, now)
            if held or not self._dispatch(call):
                held.append(call)
        return count

    def _check_call(self, frames, size, left_out):
        # [client, b'', message id, payload]: anything else is not a call.
        if self.max_message_size is not None and size > self.max_message_size:
            return self._refuse('size', 'a call of %d bytes (the limit is %d)',
                                size, self.max_message_size)
        if len(frames) < 3 or frames[1]:
            return self._refuse('envelope', 'a message without a call\'s envelope')
        if len(frames) != 4 or left_out:
            count = len(frames) + left_out - 2
            self._answer_malformed(frames, count)
            return self._refuse('frames', 'a call of %d frames', count)
        if frames[2] == DRAINING_ID:
            # A client read the notice: nothing more comes from it; "done":
            # it has read all its answers too.
            if self.draining:
                self._acked.add(frames[0])
                if frames[3] == DRAIN_DONE:
                    self._done.add(frames[0])
            return None
        return frames[0], frames[2], frames[3]

    def _answer_malformed(self, frames, count):
        if self.codec is None:
            return
        value = 'malformed call: %d frames' % count
        answer = self.codec.dumps({'error': {'code': ERROR_SERVER, 'value': value}})
        try:
            send_frames(self.frontend, [frames[0], b'', frames[2], answer])
        except zmq.ZMQError:
            pass  # draining (ROUTER_MANDATORY), and the client has gone

    def _refuse(self, kind, why, *args):
        self.refused += 1
        self._log.log(logging.WARNING, kind, 'router: dropped ' + why + ' from a client', *args)
        return None

    # -- workers --------------------------------------------------------------

    def _pick(self):
        """The worker the next call goes to, or None while every one is full.

        The fewest unfinished calls wins.  Among idle workers, the one idle
        longest (calls take turns, as in the queue mode); among busy ones,
        the one that finished a call last: a worker stuck in a slow call has
        not, and calls queued behind that call would wait for it.
        """
        best = None
        best_unfinished = best_rank = 0
        for worker in self._live:
            unfinished = worker.sent - worker.finished
            if unfinished >= worker.window:
                continue
            rank = worker.progress if unfinished else -worker.progress
            if best is None or unfinished < best_unfinished or (
                    unfinished == best_unfinished and rank > best_rank):
                best, best_unfinished, best_rank = worker, unfinished, rank
        return best

    def _dispatch(self, call):
        """Send ``call`` to a worker with room; False when there is none."""
        client, message_id, payload = call
        backend = self.backend
        while True:
            worker = self._pick()
            if worker is None:
                return False
            try:
                # Refused on the first frame when the worker is gone.
                backend.send(worker.identity, _SNDMORE)
                backend.send(six.int2byte(len(client)) + client + message_id, _SNDMORE)
                backend.send(payload)
            except zmq.ZMQError:  # EHOSTUNREACH (ROUTER_MANDATORY): the worker is gone
                logger.warning('router: worker %r has disconnected; no more calls go to it',
                               worker.identity)
                self._forget(worker)
                continue
            worker.sent += 1
            return True

    def _send_held(self):
        held = self.held
        while held.count and self._dispatch(held.first()):
            held.pop_first()

    def _read_workers(self):
        """Take in the workers' messages; return how many were read."""
        backend = self.backend
        frontend = self.frontend
        now = time.time()
        workers = self.workers
        state = _STATE
        answered_at = self._answered_at if self.draining else None
        count = 0
        while count < WORKER_BATCH:
            try:
                frames = backend.recv_multipart(_NOBLOCK)
            except zmq.Again:
                break
            count += 1
            head = frames[1] if len(frames) > 1 else b''
            if len(head) < _STATE_SIZE or len(frames) > 3 or \
                    six.indexbytes(head, 0) != PROTOCOL_VERSION:
                self._refuse_worker_message(frames)
                continue
            _, finished, window = state.unpack_from(head)
            if len(head) > _STATE_SIZE:
                # An answer: [client, b'', message id(, payload)] to the client.
                end = _STATE_SIZE + 1 + six.indexbytes(head, _STATE_SIZE)
                client = head[_STATE_SIZE + 1:end]
                if answered_at is not None:
                    answered_at[client] = now
                try:
                    frontend.send(client, _SNDMORE)
                except zmq.ZMQError:
                    # Draining (ROUTER_MANDATORY): the client has gone, and
                    # nothing of the answer was queued.
                    pass
                else:
                    frontend.send(b'', _SNDMORE)
                    if len(frames) == 3:
                        frontend.send(head[end:], _SNDMORE)
                        frontend.send(frames[2])
                    else:
                        frontend.send(head[end:])
                self.answered += 1
            worker = workers.get(frames[0])
            if worker is None:
                worker = self._join(frames[0], finished, now)
            elif not worker.live:
                self._revive(worker, now)
            worker.last_seen = now
            worker.window = window
            if not window:
                # A worker on its way out: it gets no more calls, and is told.
                self._release(worker)
            if finished != worker.finished:
                self._ticks += 1
                worker.progress = self._ticks
                worker.finished = finished
                # A worker that finished calls the router never sent (sent
                # before the router started) is even again.
                if finished > worker.sent:
                    worker.sent = finished
        if count and self.held:
            self._send_held()
        return count

    def _reachable(self, worker):
        """Whether ``worker``'s connection is still open (it gets a probe)."""
        return self._tell_worker(worker, PROBE)

    def _release(self, worker):
        self._tell_worker(worker, RELEASED)

    def _tell_worker(self, worker, message):
        """Send ``worker`` a one-frame message; False when it has gone."""
        try:
            self.backend.send(worker.identity, _SNDMORE)
            self.backend.send(message)
        except zmq.ZMQError:  # EHOSTUNREACH (ROUTER_MANDATORY)
            return False
        return True

    def _refuse_worker_message(self, frames):
        self.refused += 1
        self._log.log(logging.WARNING, 'worker protocol',
                      'router: dropped a message of %d frames from a worker that does not '
                      'speak this router\'s protocol (a --dispatch=queue worker?)',
                      len(frames) - 1)

    def _join(self, identity, finished, now):
        worker = self.workers[identity] = _Worker(identity, finished, now)
        self._live.append(worker)
        self._warned_no_workers = False
        logger.debug('router: worker %r joined', identity)
        return worker

    def _revive(self, worker, now):
        logger.info('router: worker %r speaks again after %.1f s; calls go to it again',
                    worker.identity, now - worker.last_seen)
        worker.live = True
        self._live.append(worker)

    def _forget(self, worker):
        self.workers.pop(worker.identity, None)
        if worker.live:
            worker.live = False
            self._live.remove(worker)

    def _check_workers(self, now):
        clients = self.clients
        for client in [client for client, last_call in clients.items()
                       if now - last_call > CLIENT_MEMORY and client not in self._told]:
            del clients[client]
        for worker in list(self.workers.values()):
            silent = now - worker.last_seen
            if silent <= WORKER_TIMEOUT:
                continue
            if silent > WORKER_FORGET_AFTER or not self._reachable(worker):
                # Silent for long, or its connection has closed (it left, or
                # died): what it had unfinished will never be answered.
                unfinished = worker.sent - worker.finished
                if unfinished:
                    logger.warning('router: worker %r has gone with %d unfinished calls; '
                                   'they time out or are retried by their clients',
                                   worker.identity, unfinished)
                self._forget(worker)
            elif worker.live:
                logger.warning('router: worker %r silent for %.1f s (gone, or busy in a long '
                               'call); no calls go to it until it speaks again',
                               worker.identity, silent)
                worker.live = False
                self._live.remove(worker)
        if self.held and not self._live and not self._warned_no_workers:
            self._warned_no_workers = True
            if self.workers:
                logger.warning('router: %d calls wait and every worker process is silent',
                               len(self.held))
            else:
                logger.warning('router: %d calls wait and no worker process has said it is '
                               'ready (are the workers --dispatch=queue?)', len(self.held))
