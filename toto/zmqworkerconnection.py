"""Calling Toto workers over ZeroMQ.

A :class:`ZMQWorkerConnection` keeps one ``DEALER`` socket connected to every
worker address; ZeroMQ spreads the calls round robin over the workers that
are up.  The socket lives on a private I/O thread, so :meth:`invoke` works
from any thread, and every answer comes back where the call was made: on the
caller's running IOLoop, or on the connection's thread for callers that run
no loop::

    from tornado import gen
    from toto.zmqworkerconnection import ZMQWorkerConnection

    conn = ZMQWorkerConnection('tcp://127.0.0.1:55555,tcp://127.0.0.1:55556',
                               timeout=5.0)

    conn.invoke('accounts.lookup', {'id': 7}, callback=print)

    @gen.coroutine
    def lookup():
        result = yield conn.accounts.lookup({'id': 7}, **{'await': True})
        raise gen.Return(result)

A call that times out gets ``{'error': 'timeout'}`` unless it retries;
errors raised by the worker method arrive as ``{'error': {'code': ...,
'value': ...}}`` results.  Nothing here raises for a remote failure.
"""

from __future__ import absolute_import, division, print_function

import collections
import logging
import threading
import uuid

import six
import zmq
from tornado.concurrent import Future
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.options import options

from toto._codec import MessageCodec
from toto.workerconnection import (WorkerConnection, _instances, _instances_lock,
                                   check_method, check_timeout, parse_addresses,
                                   pop_await)

try:
    from concurrent.futures import Future as ThreadFuture
except ImportError:  # pragma: no cover - Python 2 without the futures backport
    ThreadFuture = None

try:
    import asyncio
    _get_running_asyncio_loop = asyncio._get_running_loop
except (ImportError, AttributeError):  # Python 2
    _get_running_asyncio_loop = None

logger = logging.getLogger('toto.zmqworkerconnection')

#: Result given to calls that run out of time without retrying.
TIMEOUT_RESULT = {'error': 'timeout'}
#: Result given to calls still waiting when the connection closes.
CLOSED_RESULT = {'error': 'closed'}

# How many answers one pass of the socket handler reads before it lets the
# IOLoop run other work; the rest are read on the next pass.
_RECV_BATCH = 256
# How long a thread waits for the I/O thread to apply a connection change.
_APPLY_TIMEOUT = 30.0


def _running_ioloop():
    """Return the IOLoop running on this thread, or None."""
    if _get_running_asyncio_loop is not None:
        if _get_running_asyncio_loop() is None:
            return None
        return IOLoop.current()
    loop = IOLoop.current(instance=False)
    if loop is not None and getattr(loop, '_running', False):
        return loop
    return None


class _Call(object):
    """Book-keeping for one call that has not completed yet."""

    __slots__ = ('message_id', 'payload', 'callback', 'future', 'loop',
                 'timeout', 'auto_retry', 'deadline', 'queued')

    def __init__(self, message_id, payload, callback, future, loop, timeout, auto_retry):
        self.message_id = message_id
        self.payload = payload
        self.callback = callback
        self.future = future
        # The caller's IOLoop; None means "complete on the connection thread".
        self.loop = loop
        self.timeout = timeout
        self.auto_retry = auto_retry
        self.deadline = None
        # True while the call waits in the outbox for the socket to accept it.
        self.queued = False


def _new_message_id():
    return str(uuid.uuid4()).encode('ascii')


class ZMQWorkerConnection(WorkerConnection):
    """Make calls to Toto workers over a ZeroMQ ``DEALER`` socket.

    ``address`` is a comma separated string or an iterable of ZeroMQ endpoints
    (``tcp://host:port``); calls are balanced round robin over the connected
    workers.  ``timeout`` (seconds, never 0) is the default for new calls and
    also sets how often pending calls are checked: a call expires between
    ``timeout`` and twice that after it was sent.  A negative timeout never
    expires.  ``compression`` (``compress``/``decompress``) and
    ``serialization`` (``dumps``/``loads``; default pickle protocol 2) must
    match the workers'.  With ``auto_retry`` a call that times out is sent
    again, with the same id, until a worker answers; the method may then run
    more than once, and retries can congest a busy worker service.
    """

    def __init__(self, address, timeout=10.0, compression=None, serialization=None,
                 auto_retry=False):
        self.timeout = check_timeout(timeout)
        self.auto_retry = bool(auto_retry)
        self._codec = MessageCodec(compression, serialization)
        self.compression = self._codec.compression
        self.serialization = self._codec.serialization
        #: The addresses the socket is connected to.
        self.active_connections = set()
        self._pending = {}
        self._lock = threading.Lock()
        self._closed = False
        self._context = zmq.Context.instance()
        self._socket = None
        self._io_loop = None
        self._thread = None
        self._thread_ident = None
        self._sweeper = None
        self._sweep_interval = abs(self.timeout)
        # Pending calls with a finite timeout, by timeout value.  Calls of one
        # timeout expire in the order they were sent, so a sweep only looks at
        # the front of each queue: its cost follows what expired, not what is
        # pending.
        self._deadlines = {}
        self._outbox = collections.deque()
        self._events_check_scheduled = False
        addresses = parse_addresses(address)
        self.start()
        try:
            self.set_connections(addresses)
        except Exception:
            self.close()
            raise

    @classmethod
    def _from_options(cls):
        return cls(options.worker_address,
                   timeout=options.worker_timeout,
                   compression=options.worker_compression_module or None,
                   serialization=options.worker_serialization_module or None,
                   auto_retry=options.worker_auto_retry)

    @classmethod
    def instance(cls):
        """Return the shared connection configured by the ``worker_*`` options.

        It is created on first use from ``--worker_address``,
        ``--worker_timeout``, ``--worker_auto_retry`` and the compression and
        serialization module options.
        """
        return super(ZMQWorkerConnection, cls).instance()

    def __len__(self):
        return len(self._pending)

    # -- calls ------------------------------------------------------------

    def invoke(self, method, parameters={}, callback=None, timeout=0, auto_retry=None,
               *legacy_args, **kwargs):
        """Call ``method`` on a worker with ``parameters``.

        ``callback``, when given, is called once with the worker's answer.  A
        ``timeout`` of 0 or an ``auto_retry`` of None uses the connection's
        value.  Without retry, a call that times out gets
        ``{'error': 'timeout'}``; with retry it is sent again until a worker
        answers.  A negative timeout never expires or retries.

        Pass ``await=True`` (Python 2), ``**{'await': True}`` or
        ``await_=True`` (Python 3) to get a Future for the answer instead; any
        callback is then ignored.  From a thread running an IOLoop the Future
        is an IOLoop Future that ``yield`` and ``await`` accept; from a thread
        with no running loop it is a :class:`concurrent.futures.Future`.

        Callbacks and Futures complete on the caller's IOLoop when the caller
        runs one, otherwise on the connection's I/O thread.  Bad arguments and
        parameters the serializer cannot encode raise here, before anything
        is sent.
        """
        wait = pop_await(kwargs, legacy_args)
        check_method(method)
        if timeout is None or (timeout == 0 and not isinstance(timeout, bool)):
            timeout = self.timeout
        else:
            timeout = check_timeout(timeout)
        if auto_retry is None:
            auto_retry = self.auto_retry
        if callback is not None and not callable(callback):
            raise TypeError('callback must be callable, not %r' % (callback,))
        payload = self._encode(method, parameters)

        on_io_thread = threading.current_thread().ident == self._thread_ident
        loop = None if on_io_thread else _running_ioloop()
        future = None
        if wait:
            callback = None
            if loop is not None or on_io_thread:
                future = Future()
            else:
                future = ThreadFuture()
        call = _Call(_new_message_id(), payload, callback, future, loop, timeout,
                     bool(auto_retry))
        with self._lock:
            closed = self._closed
            if not closed:
                self._pending[call.message_id] = call
                if not on_io_thread:
                    self._io_loop.add_callback(self._dispatch, call)
        if closed:
            self._deliver(call, CLOSED_RESULT.copy())
        elif on_io_thread:
            self._dispatch(call)
        return future

    def _encode(self, method, parameters):
        try:
            return self._codec.dumps({'method': method, 'parameters': parameters})
        except Exception as error:
            six.raise_from(TypeError('cannot serialize the parameters of %r: %s: %s'
                                     % (method, type(error).__name__, error)), error)

    # -- connection set ---------------------------------------------------

    def add_connection(self, address):
        """Connect to the worker(s) at ``address``.

        New calls are balanced round robin over all connected workers.
        ``active_connections`` includes the address when this returns.
        """
        self._apply(self._connect, parse_addresses(address))

    def remove_connection(self, address):
        """Disconnect from the worker(s) at ``address``.

        Addresses that are not connected are ignored.  Calls already sent to
        that worker are answered if it still answers, else they time out (or
        retry on the remaining workers).
        """
        self._apply(self._disconnect, parse_addresses(address))

    def set_connections(self, addresses):
        """Connect to exactly ``addresses``.

        New addresses are connected, connected ones not listed are
        disconnected, and the ones in both are left alone.
        """
        wanted = parse_addresses(addresses)

        def replace():
            self._disconnect([a for a in list(self.active_connections) if a not in wanted])
            self._connect(wanted)
        self._apply(replace)

    def _apply(self, function, *args):
        # Sockets belong to the I/O thread, so changes run there; the caller
        # waits so that errors surface at the call site and
        # active_connections is current when this returns.
        if self._closed:
            raise RuntimeError('this ZMQWorkerConnection is closed')
        thread = self._thread
        if thread is None or not thread.is_alive() or \
                threading.current_thread().ident == self._thread_ident:
            return function(*args)
        done = ThreadFuture()

        def run():
            try:
                done.set_result(function(*args))
            except Exception as error:
                done.set_exception(error)
        self._io_loop.add_callback(run)
        return done.result(_APPLY_TIMEOUT)

    def _connect(self, addresses):
        for address in addresses:
            if address in self.active_connections:
                continue
            try:
                self._socket.connect(address)
            except zmq.ZMQError as error:
                six.raise_from(ValueError('cannot connect to worker address %r: %s'
                                          % (address, error)), error)
            self.active_connections.add(address)
        self._check_events()

    def _disconnect(self, addresses):
        for address in addresses:
            if address not in self.active_connections:
                continue
            self.active_connections.discard(address)
            try:
                self._socket.disconnect(address)
            except zmq.ZMQError as error:
                logger.debug('disconnecting %s: %s', address, error)

    # -- the I/O thread ---------------------------------------------------

    def start(self):
        """Start the I/O thread, if it is not running (done on creation)."""
        if self._closed:
            raise RuntimeError('this ZMQWorkerConnection is closed')
        if self._thread is not None and self._thread.is_alive():
            return
        ready = threading.Event()
        failure = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure),
                                        name='toto-zmq-connection')
        self._thread.daemon = True
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def stop(self):
        """Stop the I/O thread; pending calls wait until :meth:`start`."""
        if self._io_loop is not None and self._thread is not None:
            self._io_loop.add_callback(self._io_loop.stop)

    def join(self, timeout=None):
        """Wait for the I/O thread to end (after :meth:`stop` or :meth:`close`)."""
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join(timeout)

    def close(self):
        """Fail every pending call with ``{'error': 'closed'}`` and release
        the socket and the I/O thread.  Later calls get the same answer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with _instances_lock:
            if _instances.get(type(self)) is self:
                del _instances[type(self)]
        thread = self._thread
        if thread is not None and thread.is_alive() and \
                threading.current_thread().ident != self._thread_ident:
            self._io_loop.add_callback(self._shutdown)
            thread.join()
        else:
            self._shutdown()

    def _run(self, ready, failure):
        self._thread_ident = threading.current_thread().ident
        try:
            if self._io_loop is None:
                self._io_loop = IOLoop(make_current=False)
                self._io_loop.add_callback(self._open_socket, ready, failure)
            else:
                ready.set()
            self._io_loop.start()
        except Exception as error:  # pragma: no cover - defensive
            failure.append(error)
            ready.set()
            logger.exception('worker connection I/O thread failed')
        finally:
            self._thread_ident = None
            if self._closed and self._io_loop is not None:
                self._io_loop.close(all_fds=False)

    def _open_socket(self, ready, failure):
        try:
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            # Queue calls only to workers whose connection is up, so a worker
            # address that is down does not swallow its share of calls.
            socket.setsockopt(zmq.IMMEDIATE, 1)
            self._socket = socket
            self._io_loop.add_handler(socket.getsockopt(zmq.FD), self._on_socket_event,
                                      IOLoop.READ)
            self._start_sweeper()
        except Exception as error:
            failure.append(error)
            self._io_loop.stop()
        finally:
            ready.set()

    def _start_sweeper(self):
        if self._sweeper is not None:
            self._sweeper.stop()
        self._sweeper = PeriodicCallback(self._sweep, self._sweep_interval * 1000.0)
        self._sweeper.start()

    def _dispatch(self, call):
        if call.message_id not in self._pending:
            return  # completed (closed) before it reached the I/O thread
        if call.timeout > 0:
            call.deadline = self._io_loop.time() + call.timeout
            bucket = self._deadlines.get(call.timeout)
            if bucket is None:
                bucket = self._deadlines[call.timeout] = collections.OrderedDict()
            bucket[call.message_id] = call
            if call.timeout < self._sweep_interval:
                # A shorter per-call timeout deserves a sweep that keeps up.
                self._sweep_interval = call.timeout
                self._start_sweeper()
        self._send(call)

    def _send(self, call):
        if call.queued:
            return
        if self._outbox:
            call.queued = True
            self._outbox.append(call)
            return
        try:
            self._socket.send_multipart([b'', call.message_id, call.payload], zmq.NOBLOCK)
        except zmq.Again:
            call.queued = True
            self._outbox.append(call)
        self._check_events()

    def _check_events(self):
        # The ZeroMQ descriptor only signals changes: a send can consume the
        # signal that answers arrived, so look at the socket's state after
        # every send (once per IOLoop iteration).
        if not self._events_check_scheduled:
            self._events_check_scheduled = True
            self._io_loop.add_callback(self._handle_events)

    def _on_socket_event(self, fd, events):
        self._handle_events()

    def _handle_events(self):
        self._events_check_scheduled = False
        socket = self._socket
        if socket is None or socket.closed:
            return
        for _ in range(_RECV_BATCH):
            events = socket.getsockopt(zmq.EVENTS)
            progressed = False
            if events & zmq.POLLIN:
                try:
                    frames = socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    pass
                else:
                    progressed = True
                    self._on_reply(frames)
            if events & zmq.POLLOUT and self._outbox:
                progressed = self._flush_outbox() or progressed
            if not progressed:
                return
        # More work than one batch: continue after other callbacks had a turn.
        self._check_events()

    def _flush_outbox(self):
        sent = False
        while self._outbox:
            call = self._outbox[0]
            if call.message_id not in self._pending:
                self._outbox.popleft()
                call.queued = False
                continue
            try:
                self._socket.send_multipart([b'', call.message_id, call.payload],
                                            zmq.NOBLOCK)
            except zmq.Again:
                break
            self._outbox.popleft()
            call.queued = False
            sent = True
        return sent

    def _on_reply(self, frames):
        if frames and not frames[0]:
            frames = frames[1:]  # the envelope delimiter
        if not frames:
            logger.debug('dropping an empty answer')
            return
        message_id = frames[0]
        call = self._pending.pop(message_id, None)
        if call is None:
            logger.debug('dropping answer for unknown or completed call %r', message_id)
            return
        self._forget_deadline(call)
        if len(frames) < 2:
            result = None  # acknowledgement of an asynchronous method
        else:
            try:
                result = self._codec.loads(frames[1])
            except Exception as error:
                logger.debug('undecodable answer for call %r: %r', message_id, error)
                result = {'error': error}
        self._deliver(call, result)

    def _forget_deadline(self, call):
        if call.deadline is not None:
            bucket = self._deadlines.get(call.timeout)
            if bucket is not None:
                bucket.pop(call.message_id, None)

    def _sweep(self):
        now = self._io_loop.time()
        for timeout, bucket in list(self._deadlines.items()):
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
                    self._send(call)
                elif self._pending.pop(message_id, None) is not None:
                    self._deliver(call, TIMEOUT_RESULT.copy())

    def _shutdown(self):
        pending = list(self._pending.values())
        self._pending.clear()
        self._deadlines.clear()
        self._outbox.clear()
        for call in pending:
            self._deliver(call, CLOSED_RESULT.copy())
        if self._sweeper is not None:
            self._sweeper.stop()
        if self._socket is not None:
            if self._io_loop is not None:
                try:
                    self._io_loop.remove_handler(self._socket.getsockopt(zmq.FD))
                except Exception as error:  # pragma: no cover - defensive
                    logger.debug('removing socket handler: %r', error)
            self._socket.close(0)
        self.active_connections.clear()
        if self._io_loop is not None:
            self._io_loop.stop()

    # -- completion -------------------------------------------------------

    def _deliver(self, call, result):
        if call.loop is None:
            self._complete(call, result)
            return
        try:
            call.loop.add_callback(self._complete, call, result)
        except Exception as error:
            # The caller's loop is closed: nobody is left to receive this.
            logger.warning('dropping result of call %r: caller IOLoop unavailable (%r)',
                           call.message_id, error)

    def _complete(self, call, result):
        if call.future is not None:
            try:
                if not call.future.done():
                    call.future.set_result(result)
            except Exception as error:  # cancelled by the caller meanwhile
                logger.debug('future of call %r not completed: %r', call.message_id, error)
        elif call.callback is not None:
            try:
                call.callback(result)
            except Exception as error:
                self.log_error(error)
