"""Calling Toto workers over ZeroMQ.

A :class:`ZMQWorkerConnection` sends each call to one of its worker
addresses, in turn, skipping workers whose connection is down.  It can be
used from any thread, and every answer comes back where the call was made:
on the caller's running IOLoop (which then owns the sockets, so nothing
crosses threads), or on the connection's own I/O thread for callers that run
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

import itertools
import logging
import random
import threading
import uuid

import zmq
from tornado.concurrent import Future
from tornado.ioloop import IOLoop
from six.moves._thread import get_ident as _get_ident
from tornado.options import options

from toto._codec import MessageCodec
from toto._security import load_curve_key
from toto._zmqchannel import CLOSED_RESULT, TIMEOUT_RESULT  # noqa: F401 -- public names
from toto._zmqchannel import _Call, _Channel, _loop_closed, _Window
from toto.workerconnection import (WorkerConnection, _instances, _instances_lock,
                                   check_max_in_flight, check_method, check_timeout,
                                   parse_addresses, pop_await)

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

# How long a thread waits for the I/O thread to apply a connection change.
_APPLY_TIMEOUT = 30.0


if _get_running_asyncio_loop is not None:
    def _running_loop_key():
        """Identify the loop running on this thread (None if there is none).

        On Python 3 that is the asyncio loop: finding it is cheaper than
        finding the IOLoop that wraps it, and this runs on every call.
        """
        return _get_running_asyncio_loop()
else:
    def _running_loop_key():
        """Identify the loop running on this thread (None if there is none)."""
        loop = IOLoop.current(instance=False)
        if loop is not None and getattr(loop, '_running', False):
            return loop
        return None


class _MessageIds(object):
    """Message ids for one connection: uuid4 text, cheap to make.

    Each id is a uuid4 made once per connection whose last 48 bits count up
    from a random start: the text keeps the uuid4 form the workers know, and
    a call costs a counter step instead of reading the system's random
    source.  ``itertools.count`` steps atomically, so threads may share it.
    """

    def __init__(self):
        self._prefix = str(uuid.uuid4())[:24].encode('ascii')
        self._counter = itertools.count(random.getrandbits(48))

    def next(self):
        return self._prefix + (b'%012x' % (next(self._counter) & 0xffffffffffff))


class ZMQWorkerConnection(WorkerConnection):
    """Make calls to Toto workers over ZeroMQ ``DEALER`` sockets.

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

    Each thread that runs an IOLoop and makes calls gets a socket of its own
    on that loop, so its calls never cross threads; calls from threads that
    run no loop go through the connection's private I/O thread.

    At most :attr:`max_in_flight` calls (``--worker_max_in_flight``, 500 by
    default) are on the wire to one worker address at a time, counted over
    every thread and loop; further calls wait in the connection, in order,
    and go out as answers come back.  Their timeout still counts from
    :meth:`invoke`.
    """

    def __init__(self, address, timeout=10.0, compression=None, serialization=None,
                 auto_retry=False):
        self.timeout = check_timeout(timeout)
        self.auto_retry = bool(auto_retry)
        self._codec = MessageCodec(compression, serialization)
        self.compression = self._codec.compression
        self.serialization = self._codec.serialization
        self._context = zmq.Context.instance()
        self._message_ids = _MessageIds()
        # (generation, addresses, CURVE keys): one tuple, so any thread reads
        # a consistent state; channels reconnect when the generation moves.
        self._address_state = (0, (), None)
        self._channels = {}
        self._io_channel = None
        self._lock = threading.Lock()
        self._max_in_flight = check_max_in_flight(options.worker_max_in_flight)
        # One window per worker address, shared by every channel.
        self._windows = {}
        self._closed = False
        self._io_loop = None
        self._thread = None
        self._thread_ident = None
        addresses = parse_addresses(address)
        self.start()
        try:
            self.set_connections(addresses)
        except Exception:
            self.close()
            raise

    @classmethod
    def _from_options(cls):
        connection = cls('', timeout=options.worker_timeout,
                         compression=options.worker_compression_module or None,
                         serialization=options.worker_serialization_module or None,
                         auto_retry=options.worker_auto_retry)
        try:
            if options.worker_curve_server_key:
                connection.enable_curve(options.worker_curve_server_key,
                                        options.worker_curve_public_key or None,
                                        options.worker_curve_secret_key or None)
            connection.set_connections(options.worker_address)
        except Exception:
            connection.close()
            raise
        return connection

    @classmethod
    def instance(cls):
        """Return the shared connection configured by the ``worker_*`` options.

        It is created on first use from ``--worker_address``,
        ``--worker_timeout``, ``--worker_auto_retry`` and the compression and
        serialization module options.
        """
        return super(ZMQWorkerConnection, cls).instance()

    @property
    def active_connections(self):
        """The set of worker addresses calls are sent to."""
        return set(self._address_state[1])

    @property
    def max_in_flight(self):
        """How many calls may be on the wire to one worker address at once.

        Calls beyond it wait in the connection and go out, in order, as
        answers come back; the bound is shared by every thread and IOLoop
        that calls through this connection.  0 means no bound, which is
        safe only against routers that never drop an answer (ZeroMQ's
        default ``ROUTER`` queue holds 1,000 answers per client).
        Defaults to ``--worker_max_in_flight``; may be changed at any time.
        """
        return self._max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, value):
        value = check_max_in_flight(value)
        with self._lock:
            self._max_in_flight = value
            windows = list(self._windows.values())
        for window in windows:
            window.set_limit(value)

    def _window(self, address):
        """The window of ``address``, made on first use (any thread)."""
        with self._lock:
            window = self._windows.get(address)
            if window is None:
                window = self._windows[address] = _Window(self._max_in_flight)
            return window

    def __len__(self):
        channels = list(self._channels.values())
        if self._io_channel is not None:
            channels.append(self._io_channel)
        return sum(len(channel.pending) for channel in channels)

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
        wait = pop_await(kwargs, legacy_args) if kwargs or legacy_args else False
        check_method(method)
        if timeout is None or (timeout == 0 and not isinstance(timeout, bool)):
            timeout = self.timeout
        else:
            timeout = check_timeout(timeout)
        if auto_retry is None:
            auto_retry = self.auto_retry
        if callback is not None and not callable(callback):
            raise TypeError('callback must be callable, not %r' % (callback,))
        payload = self._codec.dumps_call(method, parameters)

        on_io_thread = _get_ident() == self._thread_ident
        loop_key = None if on_io_thread else _running_loop_key()
        on_loop = on_io_thread or loop_key is not None
        future = None
        if wait:
            callback = None
            future = Future() if on_loop else ThreadFuture()
        call = _Call(self._message_ids.next(), payload, callback, future, timeout,
                     bool(auto_retry))

        if on_loop:
            channel = self._io_channel if on_io_thread else self._channels.get(loop_key)
            if channel is None:
                with self._lock:
                    if not self._closed:
                        channel = self._channels.get(loop_key) or self._new_channel(loop_key)
            # A close() racing this call closes the channel from a callback
            # on this very loop, so it fails the call after it was sent.
            if channel is not None and not self._closed:
                channel.sync(self._address_state)
                channel.submit(call)
                return future
        else:
            if timeout > 0:
                # The timeout counts from here, not from when the I/O thread
                # gets to the call.
                call.deadline = self._io_loop.time() + timeout
            with self._lock:
                if not self._closed:
                    self._io_channel.pending[call.message_id] = call
                    self._io_loop.add_callback(self._io_channel.dispatch, call)
                    return future
        self._complete_closed(call, None if not on_loop else
                              self._io_loop if on_io_thread else IOLoop.current())
        return future

    def _new_channel(self, loop_key):
        self._drop_closed_channels()
        channel = self._channels[loop_key] = _Channel(self, IOLoop.current())
        return channel

    def _drop_closed_channels(self):
        # Loops closed since their channel was made will never run its
        # callbacks again: drop those channels, which gives back the room
        # their calls held.  Called with the lock held.
        for old_key, old_channel in list(self._channels.items()):
            if _loop_closed(old_channel.loop):
                del self._channels[old_key]
                old_channel.close()

    def _complete_closed(self, call, loop):
        result = CLOSED_RESULT.copy()
        if loop is None or self._io_channel is None:
            _Channel.complete(self._io_channel, call, result)
        else:
            loop.add_callback(_Channel.complete, self._io_channel, call, result)

    # -- connection set ---------------------------------------------------

    def add_connection(self, address):
        """Connect to the worker(s) at ``address``.

        New calls are balanced round robin over all connected workers.
        ``active_connections`` includes the address when this returns.
        """
        added = parse_addresses(address)
        self._apply(lambda current, curve: (current + [a for a in added if a not in current],
                                            curve))

    def remove_connection(self, address):
        """Disconnect from the worker(s) at ``address``.

        Addresses that are not connected are ignored.  Calls already sent to
        that worker are answered if it still answers, else they time out (or
        retry on the remaining workers).  Answers are awaited from the 32
        addresses removed last (on each IOLoop that made calls); calls still
        due from one removed before those are given up like calls to a worker
        that went away.
        """
        removed = parse_addresses(address)
        self._apply(lambda current, curve: ([a for a in current if a not in removed], curve))

    def set_connections(self, addresses):
        """Connect to exactly ``addresses``.

        New addresses are connected, connected ones not listed are
        disconnected, and the ones in both are left alone.  An address
        removed a moment ago gets its socket back, so changes may be repeated
        as fast as a program likes without running out of ZeroMQ sockets (see
        :meth:`remove_connection` for the calls due from removed addresses).
        """
        wanted = parse_addresses(addresses)
        self._apply(lambda current, curve: (wanted, curve))

    def enable_curve(self, server_key, public_key=None, secret_key=None):
        """Encrypt and authenticate calls with ZeroMQ CURVE.

        ``server_key`` is the worker service's public key; ``public_key`` and
        ``secret_key`` are this client's key pair (a fresh pair is made when
        they are not given, which works with services that accept any
        client).  Keys are 40-character Z85 text or certificate files made by
        :func:`zmq.auth.create_certificates`.  Existing links are made again
        with the keys.
        """
        if not zmq.has('curve'):
            raise RuntimeError('this libzmq was built without CURVE support')
        server = load_curve_key(server_key)
        if public_key is None and secret_key is None:
            public, secret = zmq.curve_keypair()
        elif public_key is None or secret_key is None:
            raise ValueError('give both public_key and secret_key, or neither')
        else:
            public, secret = load_curve_key(public_key), load_curve_key(secret_key, True)
        curve = (server, public, secret)
        self._apply(lambda current, old_curve: (current, curve))

    def _apply(self, change):
        # Changes are made on the I/O thread, one at a time; the caller waits
        # so that a bad address raises here and active_connections is
        # current on return.  Other channels follow on their next call.
        def apply_change():
            if self._io_channel.closed:
                raise RuntimeError('this ZMQWorkerConnection is closed')
            generation, current, curve = self._address_state
            addresses, curve = change(list(current), curve)
            state = (generation + 1, tuple(addresses), curve)
            self._io_channel.sync(state)
            self._address_state = state
            with self._lock:
                # Windows of removed addresses go once nothing is on the wire
                # there; links still draining keep theirs by reference.
                for address, window in list(self._windows.items()):
                    if address not in addresses and not window.in_flight:
                        del self._windows[address]

        done = ThreadFuture()

        def run():
            try:
                done.set_result(apply_change())
            except Exception as error:
                done.set_exception(error)

        with self._lock:
            # Under the lock, so that close() queues its shutdown after this
            # change and the change runs (or is refused) before it.
            if self._closed:
                raise RuntimeError('this ZMQWorkerConnection is closed')
            thread = self._thread
            inline = thread is None or not thread.is_alive() or \
                _get_ident() == self._thread_ident
            if not inline:
                self._io_loop.add_callback(run)
        if inline:
            return apply_change()
        return done.result(_APPLY_TIMEOUT)

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
        """Stop the I/O thread; its pending calls wait until :meth:`start`."""
        if self._io_loop is not None and self._thread is not None:
            self._io_loop.add_callback(self._io_loop.stop)

    def join(self, timeout=None):
        """Wait for the I/O thread to end (after :meth:`stop` or :meth:`close`)."""
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join(timeout)

    def close(self):
        """Fail every pending call with ``{'error': 'closed'}`` and release
        the sockets and the I/O thread.  Later calls get the same answer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channels = list(self._channels.items())
            self._channels.clear()
        with _instances_lock:
            if _instances.get(type(self)) is self:
                del _instances[type(self)]
        current_key = _running_loop_key()
        for loop_key, channel in channels:
            if loop_key is current_key:
                channel.close(CLOSED_RESULT)
                continue
            try:
                if _loop_closed(channel.loop):
                    raise RuntimeError('IOLoop closed')
                channel.loop.add_callback(channel.close, CLOSED_RESULT)
            except Exception:
                channel.close()
        thread = self._thread
        if thread is not None and thread.is_alive() and \
                _get_ident() != self._thread_ident:
            self._io_loop.add_callback(self._shutdown_io)
            thread.join()
        else:
            self._shutdown_io()

    def _shutdown_io(self):
        if self._io_channel is not None:
            self._io_channel.close(CLOSED_RESULT)
        if self._io_loop is not None:
            self._io_loop.stop()

    def _run(self, ready, failure):
        self._thread_ident = _get_ident()
        try:
            if self._io_loop is None:
                self._io_loop = IOLoop(make_current=False)
                self._io_loop.add_callback(self._open_io_channel, ready, failure)
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

    def _open_io_channel(self, ready, failure):
        try:
            self._io_channel = _Channel(self, self._io_loop)
        except Exception as error:
            failure.append(error)
            self._io_loop.stop()
        finally:
            ready.set()
