"""The worker service's control channel: commands in, status documents out.

The service's parent process binds a ``ROUTER`` on
``--control_socket_address`` (:class:`ServiceControl`); its worker
processes and its router connect, say their pid, and take the commands the
service passes on.  Another process sends a command with
:func:`send_control_command` or asks for everything each process knows
with :func:`service_status`::

    from toto._control import service_status

    document = service_status('ipc:///run/toto/workercontrol.sock')
    for worker in document['workers']:
        print(worker['pid'], worker['answered'])

The frames are named in :mod:`toto._protocol`.
"""

from __future__ import absolute_import, division, print_function

import json
import logging
import time

import zmq

from toto._protocol import (CONTROL_COMMANDS, CONTROL_PREFIX, CONTROL_REFUSED, CONTROL_SENT,
                            ROUTER_HELLO, STATUS, WORKER_HELLO)
from toto._security import bind_private, check_socket_path, remove_if_unchanged

logger = logging.getLogger('toto.worker.control')

# How long a command waits for worker processes that have not said hello.
HELLO_WAIT = 1.0
# How long --command waits for the service's answer.
_CONTROL_ANSWER_WAIT = 3.0
# How long the service waits for its processes' answers to a status command.
_STATUS_WAIT = 1.5


def send_control_command(command, address):
    """Send ``command`` to the worker service whose control socket is ``address``.

    ``shutdown`` stops the service gracefully, ``reload`` replaces its
    worker processes one at a time with ones running the method modules as
    they are on disk now, and ``status`` has each worker process log its
    count of answers.  Returns how many worker processes the command
    reached (for ``status``: how many the service asked, see
    :func:`service_status` for what they said); raises
    :exc:`RuntimeError` when no service answers within a few seconds or the
    service refuses the command (a reload whose new code does not import).
    """
    kind, value = _control_request(command, address)
    if kind == STATUS:
        return len(value['workers'])
    return value


def service_status(address):
    """The status of the worker service whose control socket is ``address``.

    A dict of plain values: ``service`` (the supervising process), ``router``
    (None when the service runs none, or it did not answer) and
    ``workers``, one dict per worker process (``pid``, ``state``,
    ``answered``, ``errors``, ``in_hand``, ``uptime``, ``last_method``).
    Raises :exc:`RuntimeError` when no service answers within a few seconds.
    """
    return _control_request('status', address)[1]


def _control_request(command, address):
    """Send ``command``; return the service's answer as (kind, decoded value)."""
    if command not in CONTROL_COMMANDS:
        raise ValueError('unknown command %r: use one of %s'
                         % (command, ', '.join(CONTROL_COMMANDS)))
    check_socket_path(address, binding=False)
    context = zmq.Context()
    requester = context.socket(zmq.DEALER)
    requester.setsockopt(zmq.LINGER, 0)
    try:
        requester.connect(address)
        requester.send_multipart([CONTROL_PREFIX, command.encode('ascii')])
        deadline = time.time() + _CONTROL_ANSWER_WAIT
        while True:
            remaining = deadline - time.time()
            if remaining <= 0 or not requester.poll(remaining * 1000):
                raise RuntimeError('no worker service answered on %s within %.0f s'
                                   % (address, _CONTROL_ANSWER_WAIT))
            answer = requester.recv_multipart()
            if len(answer) != 2:
                continue
            kind, value = answer
            if kind == CONTROL_SENT and value.isdigit():
                return kind, int(value)
            if kind == CONTROL_REFUSED:
                raise RuntimeError('the worker service refused %r: %s'
                                   % (command, value.decode('utf-8', 'replace')))
            if kind == STATUS:
                try:
                    return kind, json.loads(value.decode('utf-8'))
                except ValueError:
                    continue
    finally:
        requester.close(0)
        context.term()


class StatusRequest(object):
    """A ``status`` command waiting for the answers of the processes it asked."""

    def __init__(self, sender, service, asked, router, deadline):
        self.sender = sender
        self.service = service
        self.asked = asked  # routing id -> pid
        self.router = router  # the router's routing id, or None
        self.deadline = deadline
        self.answers = {}  # routing id -> status document

    def document(self):
        workers = []
        router = None
        for peer, pid in sorted(self.asked.items(), key=lambda item: item[1]):
            answer = self.answers.get(peer)
            if peer == self.router:
                router = answer
            elif answer is not None:
                workers.append(answer)
            else:
                workers.append({'pid': pid, 'state': 'not answering'})
        return {'service': self.service, 'router': router, 'workers': workers}


class ServiceControl(object):
    """The service's end of the control channel, in the service's parent process.

    Worker processes and the router connect and say their pid; ``--command``
    senders send a command, which :meth:`serve` hands to the service once
    every running worker process has said hello (or a second has passed).
    The service answers, and sends commands on, through the other methods.
    Anything else that arrives is dropped.
    """

    def __init__(self, address):
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # A worker process that has gone fails the send instead of
        # swallowing it silently.
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._workers = {}  # pid -> routing id
        self._router = None  # (pid, routing id)
        self._pending = []  # (sender, command, when to hand it on at the latest)
        self._status_requests = []
        try:
            self._claim = bind_private(self._socket, address)
        except Exception:
            self.close()
            raise

    def serve(self, timeout, processes, router=None):
        """Handle what arrives within ``timeout`` s; return the commands to run.

        Each is a ``(command, sender)`` pair; ``processes`` are the worker
        processes running now, and ``router`` the router process, if any.
        """
        ready = []
        deadline = time.time() + timeout
        while True:
            ready.extend(self._ready_commands(processes, router))
            self._answer_status_requests()
            now = time.time()
            if ready or now >= deadline:
                return ready
            wait = deadline - now
            if self._pending:
                wait = min(wait, max(self._pending[0][2] - now, 0))
            if self._status_requests:
                wait = min(wait, max(self._status_requests[0].deadline - now, 0))
            if self._socket.poll(wait * 1000):
                while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._on_message(self._socket.recv_multipart())

    def knows(self, pid):
        """Whether the worker process ``pid`` has said hello."""
        return pid in self._workers

    @property
    def router_pid(self):
        return self._router[0] if self._router is not None else None

    def _on_message(self, message):
        if len(message) != 3:
            return
        peer, kind, value = message
        if kind == WORKER_HELLO and value.isdigit():
            self._workers[int(value)] = peer
        elif kind == ROUTER_HELLO and value.isdigit():
            self._router = (int(value), peer)
        elif kind == STATUS:
            try:
                document = json.loads(value.decode('utf-8'))
            except ValueError:
                return
            for request in self._status_requests:
                if peer in request.asked:
                    request.answers[peer] = document
        elif kind == CONTROL_PREFIX:
            command = value[:32].decode('ascii', 'replace')
            if command not in CONTROL_COMMANDS:
                logger.warning('unknown control command %r', command)
                return
            self._pending.append((peer, command, time.time() + HELLO_WAIT))

    def _ready_commands(self, processes, router):
        """The commands waiting, once every running process said hello.

        A command waits (up to HELLO_WAIT) until every running worker
        process, and the router, has said hello: one just started may not
        have yet.
        """
        if not self._pending:
            return []
        # Processes that ended are forgotten when a send to them fails: a
        # process being replaced is not among ``processes`` but is still here.
        alive = set(process.pid for process in processes if process.is_alive())
        waiting = not alive.issubset(self._workers) or (
            router is not None and router.is_alive() and self._router is None)
        if waiting and time.time() < self._pending[0][2]:
            return []
        ready = [(command, peer) for peer, command, _deadline in self._pending]
        self._pending = []
        return ready

    def _send(self, peer, *frames):
        try:
            self._socket.send_multipart([peer] + list(frames), zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False  # it has gone

    def send_to_workers(self, command, pids=None):
        """Send ``command`` to the worker processes (those in ``pids``); return how many."""
        reached = len(self._command_workers(command, pids))
        if pids is None:
            logger.info('control command %r: passed on to %d worker process%s', command,
                        reached, '' if reached == 1 else 'es')
        return reached

    def _command_workers(self, command, pids=None):
        """Send ``command`` to the worker processes; return ``{routing id: pid}`` reached.

        A process the send fails for has ended, and is forgotten.
        """
        reached = {}
        for pid, worker in list(self._workers.items()):
            if pids is not None and pid not in pids:
                continue
            if self._send(worker, CONTROL_PREFIX, command.encode('ascii')):
                reached[worker] = pid
            else:
                del self._workers[pid]
        return reached

    def send_to_router(self, command):
        """Send ``command`` to the router; False when it has not said hello."""
        if self._router is None:
            return False
        return self._send(self._router[1], CONTROL_PREFIX, command.encode('ascii'))

    def answer(self, sender, count):
        self._send(sender, CONTROL_SENT, str(count).encode('ascii'))

    def refuse(self, sender, reason):
        self._send(sender, CONTROL_REFUSED, reason.encode('utf-8', 'replace'))

    def request_status(self, sender, service):
        """Ask every process for its status; answer ``sender`` when all did."""
        asked = self._command_workers('status')
        router = None
        if self._router is not None and self.send_to_router('status'):
            router = self._router[1]
            asked[router] = self._router[0]
        self._status_requests.append(StatusRequest(sender, service, asked, router,
                                                    time.time() + _STATUS_WAIT))

    def _answer_status_requests(self):
        now = time.time()
        waiting = []
        for request in self._status_requests:
            if len(request.answers) < len(request.asked) and now < request.deadline:
                waiting.append(request)
                continue
            self._send(request.sender, STATUS,
                       json.dumps(request.document()).encode('utf-8'))
        self._status_requests = waiting

    def close(self):
        self._socket.close(0)
        self._context.term()
        remove_if_unchanged(getattr(self, '_claim', None))
