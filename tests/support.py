"""Small helpers shared by the test helpers and the tests (Python 2.7 and 3).

Nothing here replaces a part of the product: these are the waiting, recording and
event-loop plumbing that the tests need to drive real sockets and real servers.
"""

import importlib
import os
import pickle
import socket
import threading
import time
from concurrent.futures import Future as ThreadFuture

import six
from tornado import gen
from tornado.ioloop import IOLoop

DEFAULT_WAIT = 5.0
# What the test workers answer when told to answer nonsense.
GARBAGE = b'\xff\x00 this is not a pickle, json document or zlib stream \xfe'
ERROR_SERVER = 1000


# -- serialization and compression of the test workers ----------------------------------

class Pickle(object):
    """Default serialization: pickle, dumped with protocol 2 as the Toto worker does."""

    @staticmethod
    def dumps(value):
        return pickle.dumps(value, 2)

    @staticmethod
    def loads(data):
        return pickle.loads(data)


class Identity(object):
    @staticmethod
    def compress(data):
        return data

    @staticmethod
    def decompress(data):
        return data


def dispatch_args(args):
    """``--dispatch=MODE`` when ``TOTO_TEST_DISPATCH`` names a mode and ``args`` has none.

    Runs the service tests against ``--dispatch=queue`` (tox env ``queue``)
    without a copy of each test.
    """
    mode = os.environ.get('TOTO_TEST_DISPATCH')
    if not mode or any(arg.startswith('--dispatch') for arg in args):
        return []
    return ['--dispatch=' + mode]


def module_or_default(value, default):
    """The module named by ``value`` (or ``value`` itself), or ``default`` if None."""
    if value is None:
        return default
    if isinstance(value, six.string_types):
        return importlib.import_module(value)
    return value




def wait_until(predicate, timeout=DEFAULT_WAIT, interval=0.005, message=None):
    """Poll ``predicate`` until it returns something true or ``timeout`` runs out.

    ``message`` may be a function: it is called only on failure, so logs it
    reads are those of the moment the wait gave up, not of its start.
    """
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() >= deadline:
            if callable(message):
                message = message()
            raise AssertionError(message or 'condition not met within %.1f s' % timeout)
        time.sleep(interval)


def free_port():
    """A loopback TCP port that nothing listens on (bound once, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def new_io_loop():
    """A fresh IOLoop that is not current anywhere yet (Tornado 5.1 and 6)."""
    return IOLoop(make_current=False)


class Recorder(object):
    """A callback that remembers every call, the thread it ran on, and wakes waiters."""

    def __init__(self):
        self.calls = []
        self.threads = []
        self._condition = threading.Condition()

    def __call__(self, *args):
        with self._condition:
            self.calls.append(args[0] if len(args) == 1 else args)
            self.threads.append(threading.current_thread())
            self._condition.notify_all()

    def wait(self, count=1, timeout=DEFAULT_WAIT):
        """Block until at least ``count`` calls arrived; return the first result."""
        deadline = time.time() + timeout
        with self._condition:
            while len(self.calls) < count:
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise AssertionError('expected %d callback(s) within %.1f s, got %d'
                                         % (count, timeout, len(self.calls)))
                self._condition.wait(remaining)
            return self.calls[0]

    @property
    def count(self):
        with self._condition:
            return len(self.calls)


class LoopThread(object):
    """A thread running its own Tornado IOLoop, so tests can act from "another loop"."""

    def __init__(self, name='test-loop-thread'):
        self.io_loop = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name)
        self.thread.daemon = True
        self.thread.start()
        if not self._ready.wait(DEFAULT_WAIT):
            raise RuntimeError('IOLoop thread did not start')

    def _run(self):
        self.io_loop = new_io_loop()
        self.io_loop.add_callback(self._ready.set)
        try:
            self.io_loop.start()
        finally:
            self.io_loop.close(all_fds=True)

    def run(self, function, timeout=DEFAULT_WAIT):
        """Run ``function`` on the loop; wait for its value (or the Future it returns)."""
        outcome = ThreadFuture()

        def settle(future):
            try:
                outcome.set_result(future.result())
            except Exception as exc:  # handed to the calling thread
                outcome.set_exception(exc)

        def call():
            try:
                value = function()
            except Exception as exc:  # handed to the calling thread
                outcome.set_exception(exc)
                return
            if gen.is_future(value) or _is_awaitable(value):
                self.io_loop.add_future(gen.convert_yielded(value), settle)
            else:
                outcome.set_result(value)

        self.io_loop.add_callback(call)
        return outcome.result(timeout)

    def stop(self):
        if self.thread.is_alive():
            self.io_loop.add_callback(self.io_loop.stop)
            self.thread.join(DEFAULT_WAIT)
        if self.thread.is_alive():
            raise RuntimeError('IOLoop thread did not stop')


def _is_awaitable(value):
    return hasattr(value, '__await__')
