"""Background threads for short blocking jobs, and pools of objects shared by threads.

A :class:`TaskQueue` runs functions on a few worker threads that it starts
when work arrives and that end after a while without work.  It suits short
blocking calls (a database driver, a file); long or CPU-heavy work belongs
in a Toto worker service instead.  :meth:`TaskQueue.yield_task` hands the
result back to the IOLoop that asked, as a Future::

    from tornado import gen
    from toto.tasks import InstancePool, TaskQueue

    @gen.coroutine
    def report(path):
        size = yield TaskQueue.instance('files').yield_task(os.path.getsize, path)
        raise gen.Return(size)

An :class:`InstancePool` shares objects that are not thread-safe, such as
database connections: each call borrows one object, calls the method of the
same name on it and gives it back::

    pool = InstancePool([connect() for _ in range(4)], default_queue='db')
    TaskQueue.instance('db', thread_count=4)   # before the pool's first use

    rows = pool.query('SELECT 1')                        # in this thread
    rows = yield getattr(pool, 'await')().query('...')   # on the 'db' queue
    rows = yield pool.await_().query('...')              # the same, on Python 3

``await`` became a keyword in Python 3.7, so the method is named ``await_``;
``getattr(pool, 'await')`` reaches it as well, for code written for Python 2.
"""

from __future__ import absolute_import, division, print_function

import collections
import contextlib
import itertools
import logging
import sys
import threading
import time

import six
from six.moves import queue as _queue
from tornado.concurrent import Future, future_set_exc_info
from tornado.ioloop import IOLoop

logger = logging.getLogger('toto.tasks')

try:
    _monotonic = time.monotonic
except AttributeError:  # Python 2
    _monotonic = time.time

try:
    import asyncio
except ImportError:  # Python 2: Tornado's own Future
    asyncio = None

# TaskQueue.instance() registry: name -> queue, shared by every thread.
_shared_queues = {}
_shared_queues_lock = threading.Lock()


class TaskQueue(object):
    """Runs queued functions on up to ``thread_count`` daemon threads.

    Threads are named ``<name>-<n>`` and started only when a task finds no
    idle thread; a thread that waited ``idle_timeout`` seconds without a task
    ends (None: never).  An exception from a task is logged on the
    ``toto.tasks`` logger and the thread goes on with the next task.  Tasks
    start in the order they were added.  ``len(queue)`` is the number of
    threads plus the number of tasks waiting.
    """

    def __init__(self, thread_count=1, idle_timeout=60, name='TaskQueue'):
        if isinstance(thread_count, bool) or not isinstance(thread_count, six.integer_types) \
                or thread_count < 1:
            raise ValueError('thread_count must be a positive integer, not %r' % (thread_count,))
        if idle_timeout is not None and not idle_timeout >= 0:
            raise ValueError('idle_timeout must be None or at least 0, not %r' % (idle_timeout,))
        self.name = name
        self.thread_count = thread_count
        self.idle_timeout = idle_timeout
        #: (function, args, kwargs) waiting for a thread, oldest first.
        self.tasks = collections.deque()
        #: The worker threads alive now.
        self.threads = set()
        #: Guards ``tasks`` and ``threads``; notified when a task is added.
        self.condition = threading.Condition()
        # Threads waiting for a task: each takes one, so a new task starts a
        # thread only when there are more tasks than waiting threads.
        self._waiting = 0
        self._thread_numbers = itertools.count()

    def add_task(self, fn, *args, **kwargs):
        """Queue ``fn(*args, **kwargs)``; start a thread for it if none is free."""
        with self.condition:
            self.tasks.append((fn, args, kwargs))
            self.condition.notify()
            self.run()

    def yield_task(self, fn, *args, **kwargs):
        """Queue ``fn(*args, **kwargs)`` and return a Future of its result.

        The Future belongs to the current IOLoop of the calling thread and is
        resolved there (never on the worker thread), with the return value or
        the exception and its traceback.  Call it from the IOLoop's thread::

            value = yield queue.yield_task(slow_lookup, key)
        """
        io_loop = IOLoop.current()
        future = _new_future(io_loop)

        def run_and_report():
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                outcome = (None, _deliverable_exc_info(fn, sys.exc_info()))
            else:
                outcome = (result, None)
            try:
                io_loop.add_callback(_settle, future, outcome)
            except Exception:
                logger.warning('%s: the IOLoop that waits for %r is gone; result dropped',
                               self.name, fn, exc_info=True)

        self.add_task(run_and_report)
        return future

    def run(self):
        """Start a worker thread if tasks wait, no thread is free and the cap allows.

        :meth:`add_task` calls this; there is no need to call it yourself.
        """
        with self.condition:
            if len(self.threads) >= self.thread_count or len(self.tasks) <= self._waiting:
                return
            thread = threading.Thread(target=self._work,
                                      name='%s-%d' % (self.name, next(self._thread_numbers)))
            thread.daemon = True
            # Added after start() so that a thread that failed to start does not
            # hold a place; the new thread waits for this lock before looking.
            thread.start()
            self.threads.add(thread)

    def __len__(self):
        with self.condition:
            return len(self.threads) + len(self.tasks)

    @classmethod
    def instance(cls, name, thread_count=1, idle_timeout=60):
        """The queue shared under ``name``, made on first use.

        ``thread_count`` and ``idle_timeout`` only count for the call that
        makes the queue; later calls return it unchanged.
        """
        with _shared_queues_lock:
            task_queue = _shared_queues.get(name)
            if task_queue is None:
                task_queue = _shared_queues[name] = cls(thread_count, idle_timeout, name)
            return task_queue

    # -- worker threads ------------------------------------------------------------

    def _work(self):
        me = threading.current_thread()
        try:
            while True:
                task = self._next_task(me)
                if task is None:
                    return
                fn, args, kwargs = task
                try:
                    fn(*args, **kwargs)
                except BaseException:
                    # Caught whatever it is: a task must not take its thread along.
                    logger.exception('%s: task %r failed', me.name, fn)
                # Let go of the task's arguments before waiting for the next.
                task = fn = args = kwargs = None
        finally:
            with self.condition:
                if me in self.threads:
                    # Ended by something other than the idle timeout: let a
                    # new thread take the tasks this one would have run.
                    self.threads.discard(me)
                    self.run()

    def _next_task(self, me):
        """The next task, or None once ``me`` idled ``idle_timeout`` seconds.

        A thread that gives up leaves ``threads`` under the same lock, so a
        task added later never counts on it.
        """
        with self.condition:
            deadline = None
            if self.idle_timeout is not None:
                deadline = _monotonic() + self.idle_timeout
            while not self.tasks:
                remaining = None
                if deadline is not None:
                    remaining = deadline - _monotonic()
                    if remaining <= 0:
                        self.threads.discard(me)
                        logger.debug('%s: idle for %s s, ending', me.name, self.idle_timeout)
                        return None
                self._waiting += 1
                try:
                    self.condition.wait(remaining)
                finally:
                    self._waiting -= 1
            return self.tasks.popleft()


class InstancePool(object):
    """Shares ``instances`` among threads: each call borrows one, then returns it.

    ``instances`` is one object or an iterable of them (a string is one
    object).  Any attribute not defined here is a function that borrows an
    instance (waiting for one if all are out), calls its method of that name
    and gives the instance back, whether or not the method raised.  Instances
    are lent in turn, first in first out.  ``default_queue`` names the
    :class:`TaskQueue` of :meth:`async_transaction`, :meth:`await_transaction`
    and :meth:`await_`; give that queue as many threads as there are instances
    (``TaskQueue.instance(name, thread_count=n)``) before first use, for the
    instances to work at the same time.
    """

    def __init__(self, instances, default_queue='pool'):
        self._pool = _queue.Queue()
        for each in _pooled(instances):
            self._pool.put(each)
        if self._pool.empty():
            # Borrowing from an empty pool would wait forever.
            raise ValueError('an InstancePool needs at least one instance')
        self._default_queue = default_queue

    def __getattr__(self, name):
        if name.startswith('__') and name.endswith('__'):
            # copy, pickle and friends probe for these; they are not instance methods.
            raise AttributeError(name)

        def call_borrowed(*args, **kwargs):
            with self.instance() as borrowed:
                return getattr(borrowed, name)(*args, **kwargs)

        call_borrowed.__name__ = str(name)
        return call_borrowed

    def await_(self, queue_name=None):
        """An :class:`AwaitableInstance` over this pool: each method call
        borrows an instance on the TaskQueue ``queue_name`` (default: the
        pool's) and gives a Future.  Also reachable as ``getattr(pool, 'await')``.
        """
        return AwaitableInstance(self, queue_name or self._default_queue)

    @contextlib.contextmanager
    def instance(self):
        """Borrow one instance for several calls; it goes back when the block ends.

        For example, ``with pool.instance() as connection:`` followed by
        ``connection.begin()`` and ``connection.commit()`` runs both calls on
        the same instance.
        """
        borrowed = self._get()
        try:
            yield borrowed
        finally:
            self._put(borrowed)

    def transaction(self, function):
        """Return ``function(instance)`` with a borrowed instance."""
        with self.instance() as borrowed:
            return function(borrowed)

    def async_transaction(self, function, queue_name=None):
        """Run :meth:`transaction` on a TaskQueue and return at once; failures are logged."""
        queue = TaskQueue.instance(queue_name or self._default_queue)
        queue.add_task(self.transaction, function)

    def await_transaction(self, function, queue_name=None):
        """Run :meth:`transaction` on a TaskQueue; return a Future of its result.

        Call it from an IOLoop's thread, like :meth:`TaskQueue.yield_task`.
        """
        queue = TaskQueue.instance(queue_name or self._default_queue)
        return queue.yield_task(self.transaction, function)

    def _get(self):
        return self._pool.get()

    def _put(self, borrowed):
        self._pool.put(borrowed)


# ``pool.await()`` as Toto 1.0.12 spelt it; a syntax error on Python 3.7+ but
# still reachable with getattr().
setattr(InstancePool, 'await', InstancePool.__dict__['await_'])


class AwaitableInstance(object):
    """Calls ``instance``'s methods on the TaskQueue ``queue_name``, as Futures.

    ``AwaitableInstance(db).lookup(key)`` is
    ``TaskQueue.instance(queue_name).yield_task(db.lookup, key)``::

        row = yield AwaitableInstance(db, 'db').lookup(key)
    """

    def __init__(self, instance, queue_name='pool'):
        self.instance = instance
        self.task_queue = TaskQueue.instance(queue_name)

    def __getattr__(self, name):
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)

        def call_on_queue(*args, **kwargs):
            return self.task_queue.yield_task(getattr(self.instance, name), *args, **kwargs)

        call_on_queue.__name__ = str(name)
        return call_on_queue


# -- helpers ---------------------------------------------------------------------------

def _pooled(instances):
    """The list of objects an InstancePool lends, as Toto 1.0.12 chose them."""
    # 1.0.12 iterated anything with __iter__; Python 2 strings have none.
    if isinstance(instances, (six.text_type, six.binary_type)) \
            or not hasattr(instances, '__iter__'):
        return [instances]
    try:
        iterator = iter(instances)
        first = next(iterator)
    except StopIteration:
        return []
    except TypeError:
        # pymongo's Collection and Database define an __iter__ that refuses
        # to iterate: they are one instance (1.0.12 raised here).
        return [instances]
    return [first] + list(iterator)


def _new_future(io_loop):
    """A Future for ``io_loop``, even when it is not running yet."""
    asyncio_loop = getattr(io_loop, 'asyncio_loop', None)
    if asyncio is not None and asyncio_loop is not None and Future is asyncio.Future:
        return Future(loop=asyncio_loop)
    return Future()


def _deliverable_exc_info(fn, exc_info):
    """``exc_info``, unless a Future cannot carry it: then a RuntimeError.

    asyncio refuses StopIteration as a Future's exception, and on Python 2 a
    coroutine that receives one ends quietly as if it had returned.
    """
    if not issubclass(exc_info[0], StopIteration):
        return exc_info
    error = RuntimeError('task %r raised StopIteration' % (fn,))
    if not six.PY2:
        error.__cause__ = exc_info[1]
        error = error.with_traceback(exc_info[2])
    return (RuntimeError, error, exc_info[2])


def _settle(future, outcome):
    # Runs on the future's IOLoop; a Future cancelled meanwhile stays so.
    if future.done():
        return
    result, exc_info = outcome
    if exc_info is None:
        future.set_result(result)
    else:
        future_set_exc_info(future, exc_info)
