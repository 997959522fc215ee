"""The clients being compared, and the loops that drive them.

A *call* here is a zero-argument function returning something to ``await``
(a Future or a coroutine) whose result is the echoed parameters.  The raw
baselines are written the way a pyzmq or Tornado user would write them with
no RPC layer: same messages, same bytes on the wire, same worker.
"""

import asyncio
import pickle
import threading
import time
import uuid

import zmq
import zmq.asyncio
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

#: Parameters of every echo call: a small, typical RPC argument.
PARAMETERS = {'user_id': 12345, 'name': 'benchmark', 'tags': ['a', 'b', 'c'],
              'score': 3.25, 'active': True}
METHOD = 'echo'


class CallFailed(Exception):
    """A call answered something other than the echoed parameters."""


def check(result):
    if result != PARAMETERS:
        raise CallFailed('unexpected answer: %r' % (result,))


# -- raw baselines -----------------------------------------------------------------------

class RawZMQClient(object):
    """A raw pyzmq asyncio ``DEALER``: what one writes without toto.

    Requests are ``[b'', uuid4 text, pickle.dumps({'method', 'parameters'}, 2)]``;
    one reader task resolves the Futures, kept in a dict by message id.
    Build it inside a coroutine on the running loop.
    """

    def __init__(self, address):
        self.context = zmq.asyncio.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.futures = {}
        self.loop = asyncio.get_running_loop()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        recv = self.socket.recv_multipart
        futures = self.futures
        while True:
            frames = await recv()
            future = futures.pop(frames[1], None)
            if future is not None and not future.done():
                future.set_result(pickle.loads(frames[2]))

    async def call(self, method, parameters):
        message_id = str(uuid.uuid4()).encode('ascii')
        payload = pickle.dumps({'method': method, 'parameters': parameters}, 2)
        future = self.loop.create_future()
        self.futures[message_id] = future
        await self.socket.send_multipart([b'', message_id, payload])
        return await future

    def echo(self):
        return self.call(METHOD, PARAMETERS)

    async def close(self):
        self.reader.cancel()
        try:
            await self.reader
        except (asyncio.CancelledError, Exception):
            pass
        self.socket.close(0)
        self.context.term()


class FastRawZMQClient(object):
    """A reference, not a baseline: raw pyzmq as fast as this author could make it.

    A plain (not asyncio) ``DEALER`` whose descriptor is watched by the event
    loop; answers are drained with non-blocking receives and calls sent as
    three plain ``send`` calls with integer flags.  Same frames, ids and
    pickles as :class:`RawZMQClient`.  Build it inside a coroutine on the
    running loop.
    """

    _SEND_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
    _NOBLOCK = int(zmq.NOBLOCK)
    _EVENTS = int(zmq.EVENTS)
    _POLLIN = int(zmq.POLLIN)

    def __init__(self, address):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.futures = {}
        self.loop = asyncio.get_running_loop()
        self.fd = self.socket.getsockopt(zmq.FD)
        self.loop.add_reader(self.fd, self._drain)
        self._drain_scheduled = False

    def _drain(self):
        self._drain_scheduled = False
        socket = self.socket
        recv = socket.recv
        get = socket.get
        futures = self.futures
        flags, events, pollin = self._NOBLOCK, self._EVENTS, self._POLLIN
        while get(events) & pollin:
            recv(flags)  # the empty delimiter
            message_id = recv(flags)
            payload = recv(flags)
            future = futures.pop(message_id, None)
            if future is not None and not future.done():
                future.set_result(pickle.loads(payload))

    def call(self, method, parameters):
        message_id = str(uuid.uuid4()).encode('ascii')
        payload = pickle.dumps({'method': method, 'parameters': parameters}, 2)
        future = self.loop.create_future()
        self.futures[message_id] = future
        send = self.socket.send
        send(b'', self._SEND_MORE)
        send(message_id, self._SEND_MORE)
        send(payload, self._NOBLOCK)
        if not self._drain_scheduled:
            # Sending can consume the descriptor's signal that answers came.
            self._drain_scheduled = True
            self.loop.call_soon(self._drain)
        return future

    def echo(self):
        return self.call(METHOD, PARAMETERS)

    async def close(self):
        self.loop.remove_reader(self.fd)
        self.socket.close(0)
        self.context.term()


class RawHTTPClient(object):
    """Raw Tornado ``AsyncHTTPClient`` POSTs of the same body to the same worker."""

    def __init__(self, url, timeout=30.0):
        self.url = url
        self.timeout = timeout

    async def call(self, method, parameters):
        request = HTTPRequest(self.url, method='POST',
                              body=pickle.dumps({'method': method, 'parameters': parameters}, 2),
                              headers={'Content-Type': 'application/pickle'},
                              request_timeout=self.timeout, connect_timeout=self.timeout)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code != 200:
            raise CallFailed('HTTP %s: %r' % (response.code, response.error))
        return pickle.loads(response.body)

    def echo(self):
        return self.call(METHOD, PARAMETERS)


# -- toto's connections, as calls --------------------------------------------------------

def zmq_echo(connection):
    """``await``-able echo calls through a ZMQWorkerConnection on the running loop."""
    invoke = connection.invoke

    def echo():
        return invoke(METHOD, PARAMETERS, await_=True)
    return echo


def http_echo(connection):
    invoke = connection.invoke

    def echo():
        return invoke(METHOD, PARAMETERS)
    return echo


# -- drivers -----------------------------------------------------------------------------

class Rate(float):
    """Calls per second, with the client process's CPU time per call.

    ``cpu_us`` is the CPU time of the whole client process (every thread,
    libzmq's I/O thread included) per call, in microseconds.  It is much less
    disturbed by other work on the machine than the rate is.
    """

    def __new__(cls, calls, elapsed, cpu):
        rate = super(Rate, cls).__new__(cls, calls / elapsed)
        rate.cpu_us = cpu / calls * 1e6
        return rate


async def throughput(call, calls, in_flight, check=check):
    """Run ``calls`` calls with ``in_flight`` of them outstanding; return a :class:`Rate`.

    ``check`` is given every result (by default: it must be the echo).
    """
    remaining = [calls]

    async def lane():
        while remaining[0] > 0:
            remaining[0] -= 1
            check(await call())

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*[lane() for _ in range(max(1, min(in_flight, calls)))])
    elapsed = time.perf_counter() - start
    return Rate(calls, elapsed, time.process_time() - cpu)


async def latencies(call, calls):
    """Make ``calls`` calls one at a time; return each one's time in seconds."""
    times = []
    clock = time.perf_counter
    for _ in range(calls):
        start = clock()
        result = await call()
        times.append(clock() - start)
        check(result)
    return times


def thread_callback_throughput(connection, calls, in_flight, timeout=300.0):
    """Calls/s (a :class:`Rate`) with callbacks, from a new plain thread with no loop.

    The thread keeps ``in_flight`` calls outstanding with a semaphore the
    callbacks release; it blocks the calling thread until all are answered.
    """
    slots = threading.Semaphore(in_flight)
    finished = threading.Event()
    lock = threading.Lock()
    state = {'answered': 0, 'bad': None, 'elapsed': None, 'cpu': None, 'error': None}

    def on_answer(result):
        with lock:
            state['answered'] += 1
            if result != PARAMETERS and state['bad'] is None:
                state['bad'] = result
            if state['answered'] == calls:
                state['elapsed'] = time.perf_counter() - start[0]
                state['cpu'] = time.process_time() - cpu[0]
                finished.set()
        slots.release()

    start = [None]
    cpu = [None]

    def submit_all():
        try:
            invoke = connection.invoke
            cpu[0] = time.process_time()
            start[0] = time.perf_counter()
            for _ in range(calls):
                slots.acquire()
                invoke(METHOD, PARAMETERS, callback=on_answer)
        except Exception as error:  # reported below
            state['error'] = error
            finished.set()

    thread = threading.Thread(target=submit_all, name='bench-plain-thread')
    thread.daemon = True
    thread.start()
    if not finished.wait(timeout):
        raise CallFailed('only %d of %d callbacks within %.0f s'
                         % (state['answered'], calls, timeout))
    thread.join(timeout)
    if state['error'] is not None:
        raise state['error']
    if state['bad'] is not None:
        raise CallFailed('unexpected answer: %r' % (state['bad'],))
    return Rate(calls, state['elapsed'], state['cpu'])
