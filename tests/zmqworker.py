"""A Toto-protocol ZeroMQ worker service for the tests (SPEC section 5).

Layout, as the original worker service:

    client DEALER --tcp--> ROUTER (bound on loopback) <-queue-> DEALER (inproc)
                                                                  |
                                                       N REP worker threads

Each REP thread receives ``[message_id, payload]`` where payload is
``compress(dumps({'method': ..., 'parameters': ...}))`` and answers
``[message_id, compress(dumps(result))]``, or ``[message_id]`` alone for an
acknowledgement.  With ``direct=True`` the worker is a single ROUTER that the client
talks to directly (the other layout the spec allows).

Methods are looked up by the last dotted component of the method name, so
``conn.test.echo(...)`` (method ``'test.echo'``) and ``conn.invoke('echo')`` both work:

``echo``       returns the parameters
``whoami``     returns this worker's id (unique per worker, hence per address)
``sleep``      waits ``parameters['seconds']`` then answers ``{'slept': s, 'worker': id}``
``slow_once``  waits ``parameters['seconds']`` the first time a message id is seen (over
               all workers sharing ``registry``), answers at once on any resend;
               answers ``{'attempt': n, 'worker': id}``
``fail``       answers ``{'error': {'code': 4242, 'value': 'x'}}`` as a method raising
               ``TotoException(4242, 'x')`` does
``ack``        replies ``[message_id]`` alone, like an ``@asynchronous`` method
``garbage``    replies bytes that no serializer can decode
``py2pickle``  replies a protocol 2 pickle made by Python 2.7 (``str`` values, one of them
               not UTF-8), whatever the serialization
anything else  answers ``{'error': {'code': 1000, 'value': ...}}``

Run it as a process with ``python tests/zmqworker.py --port PORT``: it prints
``READY <address> <worker id>`` when bound, ``CALL <method>`` for every request (not
with ``--quiet``), ``TOTALS calls=N replies=M`` on ``SIGUSR1``, and stops when its
standard input closes (or, with ``--until-killed``, when it is killed).
"""

from __future__ import print_function

import argparse
import signal
import sys
import threading
import time
import uuid

import zmq
from support import ERROR_SERVER, GARBAGE, Identity, Pickle, module_or_default

# pickle.dumps({'text': 'caf\xc3\xa9', 'raw': '\xff\xfe', 'num': 1}, 2) made on Python 2.7:
# 'text' holds UTF-8 bytes in a Python 2 str, 'raw' holds bytes that are not UTF-8.
PY2_PICKLE = (b'\x80\x02}q\x00(U\x04textq\x01U\x05caf\xc3\xa9q\x02U\x03numq\x03K\x01'
              b'U\x03rawq\x04U\x02\xff\xfeq\x05u.')


class SlowOnceRegistry(object):
    """Counts how often each message id was seen; share one between workers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = {}

    def attempt(self, key):
        with self._lock:
            self._seen[key] = self._seen.get(key, 0) + 1
            return self._seen[key]


class ZMQTestWorker(object):
    """A worker service bound on a loopback port; a context manager that starts/stops it."""

    def __init__(self, port=None, workers=2, serialization=None, compression=None,
                 worker_id=None, direct=False, registry=None, sleep_scale=1.0, on_call=None):
        self.port = port
        self.sleep_scale = sleep_scale
        self.on_call = on_call
        self.workers = workers
        self.serialization = module_or_default(serialization, Pickle)
        self.compression = module_or_default(compression, Identity)
        self.worker_id = worker_id or 'worker-%s' % uuid.uuid4().hex[:8]
        self.direct = direct
        self.registry = registry or SlowOnceRegistry()
        self.address = None
        self.calls = []          # dicts: message_id, method, parameters, thread
        self.replies = []        # message ids answered, in order
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._context = None
        self._threads = []

    # -- life cycle ---------------------------------------------------------------------

    def start(self):
        self._context = zmq.Context()
        self._context.linger = 0
        front = self._context.socket(zmq.ROUTER)
        if self.port:
            front.bind('tcp://127.0.0.1:%d' % self.port)
        else:
            self.port = front.bind_to_random_port('tcp://127.0.0.1')
        self.address = 'tcp://127.0.0.1:%d' % self.port
        if self.direct:
            self._spawn(self._serve_router, front)
            return self
        backend_address = 'inproc://toto-test-worker-%s' % uuid.uuid4().hex
        back = self._context.socket(zmq.DEALER)
        back.bind(backend_address)
        self._spawn(self._queue, front, back)
        for _ in range(self.workers):
            rep = self._context.socket(zmq.REP)
            rep.connect(backend_address)
            self._spawn(self._serve_rep, rep)
        return self

    def stop(self):
        """Wake sleeping methods, end the context (which ends every loop) and join."""
        if self._context is None:
            return
        self._stopping.set()
        self._context.term()
        for thread in self._threads:
            thread.join(5.0)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        self._context = None
        if alive:
            raise RuntimeError('worker threads did not stop: %s' % alive)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _spawn(self, target, *sockets):
        thread = threading.Thread(target=self._own, args=(target,) + sockets,
                                  name='%s-%d' % (self.worker_id, len(self._threads)))
        thread.daemon = True
        self._threads.append(thread)
        thread.start()

    @staticmethod
    def _own(target, *sockets):
        try:
            target(*sockets)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in sockets:
                sock.close(linger=0)

    # -- socket loops -------------------------------------------------------------------

    @staticmethod
    def _queue(front, back):
        zmq.proxy(front, back)

    def _serve_rep(self, rep):
        while True:
            frames = rep.recv_multipart()
            rep.send_multipart(self._answer(frames[0], frames[1]))
            self._replied(frames[0])

    def _serve_router(self, router):
        while True:
            frames = router.recv_multipart()
            envelope, message_id, payload = frames[:-2], frames[-2], frames[-1]
            router.send_multipart(envelope + self._answer(message_id, payload))
            self._replied(message_id)

    # -- requests -----------------------------------------------------------------------

    def _answer(self, message_id, payload):
        try:
            request = self._loads(payload)
            method = request['method']
            parameters = request['parameters']
        except Exception as exc:
            return [message_id, self._dumps(self._error(ERROR_SERVER, str(exc)))]
        with self._condition:
            self.calls.append({'message_id': message_id, 'method': method,
                               'parameters': parameters,
                               'thread': threading.current_thread().name})
            self._condition.notify_all()
        if self.on_call is not None:
            self.on_call(method, parameters)
        name = method.rsplit('.', 1)[-1]
        if name == 'ack':
            return [message_id]
        if name == 'garbage':
            return [message_id, GARBAGE]
        if name == 'py2pickle':
            return [message_id, self.compression.compress(PY2_PICKLE)]
        handler = getattr(self, '_method_' + name, None)
        if handler is None:
            result = self._error(ERROR_SERVER, "'module' object has no attribute '%s'" % name)
        else:
            result = handler(message_id, parameters)
        return [message_id, self._dumps(result)]

    def _method_echo(self, message_id, parameters):
        return parameters

    def _method_whoami(self, message_id, parameters):
        return self.worker_id

    def _method_sleep(self, message_id, parameters):
        self._stopping.wait(parameters['seconds'] * self.sleep_scale)
        return {'slept': parameters['seconds'], 'worker': self.worker_id}

    def _method_slow_once(self, message_id, parameters):
        attempt = self.registry.attempt(message_id)
        if attempt == 1:
            self._stopping.wait(parameters['seconds'] * self.sleep_scale)
        return {'attempt': attempt, 'worker': self.worker_id}

    def _method_fail(self, message_id, parameters):
        return self._error(4242, 'x')

    @staticmethod
    def _error(code, value):
        return {'error': {'code': code, 'value': value}}

    def _loads(self, payload):
        return self.serialization.loads(self.compression.decompress(payload))

    def _dumps(self, value):
        data = self.serialization.dumps(value)
        if not isinstance(data, bytes):
            data = data.encode('utf-8')
        return self.compression.compress(data)

    def _replied(self, message_id):
        with self._condition:
            self.replies.append(message_id)
            self._condition.notify_all()

    # -- what the tests look at ---------------------------------------------------------

    def wait_for(self, predicate, timeout=5.0):
        """Wait until ``predicate(worker)`` is true (checked on every call and reply)."""
        with self._condition:
            if not _wait(self._condition, lambda: predicate(self), timeout):
                raise AssertionError('worker %s: condition not met within %.1f s'
                                     % (self.worker_id, timeout))

    def calls_of(self, method):
        with self._condition:
            return [call for call in self.calls if call['method'].rsplit('.', 1)[-1] == method]


class ManualRouter(object):
    """A bare ROUTER the test drives by hand: it answers only when told to.

    It lets a test see exactly which calls a client has put on the wire, and when:
    ``receive`` returns the calls that arrived (in order), ``answer`` replies to one.
    Used from the test's own thread; the client runs on its I/O thread or a loop.
    """

    def __init__(self, address=None):
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if address is None:
            port = self.socket.bind_to_random_port('tcp://127.0.0.1')
            address = 'tcp://127.0.0.1:%d' % port
        else:
            self.socket.bind(address)
        self.address = address

    def receive(self, count, timeout=5.0):
        """Wait for ``count`` calls; return them as dicts (identity, message_id, parameters)."""
        calls = []
        deadline = time.time() + timeout
        while len(calls) < count:
            remaining = deadline - time.time()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                raise AssertionError('%d of %d calls arrived within %.1f s'
                                     % (len(calls), count, timeout))
            calls.append(self._read())
        return calls

    def received_within(self, seconds):
        """The calls that arrive within ``seconds`` (to show that no more come)."""
        calls = []
        deadline = time.time() + seconds
        while True:
            remaining = deadline - time.time()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                return calls
            calls.append(self._read())

    def _read(self):
        frames = self.socket.recv_multipart()
        identity, message_id, payload = frames[0], frames[-2], frames[-1]
        return {'identity': identity, 'message_id': message_id,
                'parameters': Pickle.loads(payload)['parameters']}

    def answer(self, call, result=None):
        """Reply to ``call`` with ``result`` (its parameters when None)."""
        if result is None:
            result = call['parameters']
        self.socket.send_multipart([call['identity'], b'', call['message_id'],
                                    Pickle.dumps(result)])

    def close(self):
        self.socket.close(0)
        self._context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class DroppingRouter(object):
    """A ROUTER that takes calls, never answers, and drops its connections every ``period`` s.

    It closes its socket and binds a new one on the same address, over and over, in a
    thread of its own, so that a client's connection goes away at any point, also while
    the client is writing a call.  It never answers: libzmq up to 4.3.5 can abort a
    process whose connection drops while it reads a message of several frames (libzmq
    issue 3663), and the client reads answers in several frames.  :meth:`stop` ends it
    and frees the address.
    """

    def __init__(self, address, period=0.02):
        self.address = address
        self.period = period
        self.received = 0
        self._stopping = threading.Event()
        self._context = zmq.Context()
        self._thread = threading.Thread(target=self._run, name='dropping-router')
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        while not self._stopping.is_set():
            socket = self._context.socket(zmq.ROUTER)
            socket.setsockopt(zmq.LINGER, 0)
            try:
                socket.bind(self.address)
            except zmq.ZMQError:  # the last socket's port is not free yet
                socket.close(0)
                self._stopping.wait(0.001)
                continue
            until = time.time() + self.period
            while time.time() < until:
                if socket.poll(5):
                    socket.recv_multipart()
                    self.received += 1
            socket.close(0)

    def stop(self):
        self._stopping.set()
        self._thread.join()
        self._context.term()


def _wait(condition, predicate, timeout):
    deadline = time.time() + timeout
    while not predicate():
        remaining = deadline - time.time()
        if remaining <= 0:
            return False
        condition.wait(remaining)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=None)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--worker-id', default=None)
    parser.add_argument('--serialization', default=None, help='module name, e.g. json')
    parser.add_argument('--compression', default=None, help='module name, e.g. zlib')
    parser.add_argument('--direct', action='store_true', help='one ROUTER, no queue device')
    parser.add_argument('--sleep-scale', type=float, default=1.0,
                        help='multiply the waits of sleep and slow_once (0: answer at once)')
    parser.add_argument('--quiet', action='store_true', help='no CALL line per request')
    parser.add_argument('--until-killed', action='store_true',
                        help='run until killed instead of until standard input closes')
    args = parser.parse_args(argv)

    def report(method, parameters):   # lets a parent process see what arrived
        print('CALL %s' % method)
        sys.stdout.flush()

    worker = ZMQTestWorker(port=args.port, workers=args.workers, worker_id=args.worker_id,
                           serialization=args.serialization, compression=args.compression,
                           direct=args.direct, sleep_scale=args.sleep_scale,
                           on_call=None if args.quiet else report)
    def report_totals(signum, frame):  # SIGUSR1: what a test asks when calls went missing
        with worker._condition:
            calls, replies = len(worker.calls), len(worker.replies)
        print('TOTALS calls=%d replies=%d' % (calls, replies))
        sys.stdout.flush()

    signal.signal(signal.SIGUSR1, report_totals)
    with worker:
        print('READY %s %s' % (worker.address, worker.worker_id))
        sys.stdout.flush()
        if args.until_killed:
            while True:
                signal.pause()  # wakes for SIGUSR1 (a plain wait would not, on 2.7)
        else:
            sys.stdin.read()   # the parent closes our stdin (or dies) to stop us
    return 0


if __name__ == '__main__':
    sys.exit(main())
