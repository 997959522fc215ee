"""toto.tasks: TaskQueue threads and Futures, InstancePool, AwaitableInstance (sheet 11).

Real worker threads and real IOLoops throughout; every wait is bounded.
"""

import logging
import sys
import threading
import time
import traceback
import uuid

import pytest
from tornado import gen

from support import DEFAULT_WAIT, LoopThread, Recorder, new_io_loop
from toto.tasks import AwaitableInstance, InstancePool, TaskQueue


def unique(prefix):
    """A queue name no other test (or parallel run) uses."""
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


def run_on_new_loop(coroutine_function):
    """Run a coroutine to its end on a fresh IOLoop in this thread."""
    io_loop = new_io_loop()
    try:
        return io_loop.run_sync(coroutine_function, timeout=DEFAULT_WAIT)
    finally:
        io_loop.close()


def finishes_within(function, timeout=DEFAULT_WAIT):
    """Call ``function`` on a helper thread; fail (instead of hanging) if it blocks."""
    outcome = {}

    def call():
        outcome['value'] = function()

    helper = threading.Thread(target=call, name='finishes-within')
    helper.daemon = True
    helper.start()
    helper.join(timeout)
    assert not helper.is_alive(), '%r still blocked after %.1f s' % (function, timeout)
    return outcome['value']


class Gate(object):
    """Holds tasks until opened, and counts how many are held at once."""

    def __init__(self):
        self.condition = threading.Condition()
        self.opened = False
        self.inside = 0
        self.most_inside = 0

    def pass_through(self, value=None):
        deadline = time.time() + DEFAULT_WAIT
        with self.condition:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.condition.notify_all()
            while not self.opened and time.time() < deadline:
                self.condition.wait(deadline - time.time())
            self.inside -= 1
        return value

    def wait_inside(self, count):
        deadline = time.time() + DEFAULT_WAIT
        with self.condition:
            while self.inside < count:
                assert time.time() < deadline, 'only %d of %d tasks arrived' % (self.inside, count)
                self.condition.wait(max(0, deadline - time.time()))

    def open(self):
        with self.condition:
            self.opened = True
            self.condition.notify_all()


class Counter(object):
    """Not thread-safe on purpose: what an InstancePool is for."""

    def __init__(self):
        self.count = 0

    def increment(self):
        self.count += 1
        return self.count

    def fail(self):
        raise ValueError('counter failed')


# -- TaskQueue.add_task ------------------------------------------------------------------

def test_tasks_run_in_order_on_a_worker_thread_named_after_the_queue():
    name = unique('ordered')
    queue = TaskQueue(name=name)
    recorder = Recorder()
    for value in (1, 2, 3):
        queue.add_task(recorder, value)
    recorder.wait(count=3)
    assert recorder.calls == [1, 2, 3]
    assert set(thread.name for thread in recorder.threads) == set([name + '-0'])
    assert threading.current_thread() not in recorder.threads


def test_keyword_arguments_reach_the_task():
    queue = TaskQueue(name=unique('kwargs'))
    recorder = Recorder()
    queue.add_task(lambda a, b=None: recorder((a, b)), 1, b=2)
    assert recorder.wait() == (1, 2)


def test_a_failing_task_is_logged_and_its_thread_runs_the_next_one(caplog):
    caplog.set_level(logging.ERROR, logger='toto.tasks')
    name = unique('failing')
    queue = TaskQueue(name=name)
    recorder = Recorder()

    def explode():
        raise ValueError('task exploded')

    queue.add_task(explode)
    queue.add_task(recorder, 'after')
    assert recorder.wait() == 'after'
    assert recorder.threads[0].name == name + '-0'
    failures = [record for record in caplog.records if record.name == 'toto.tasks']
    assert len(failures) == 1
    assert failures[0].exc_info[0] is ValueError
    assert name + '-0' in failures[0].getMessage()
    assert len(queue.threads) == 1


def test_threads_never_exceed_thread_count():
    name = unique('capped')
    queue = TaskQueue(thread_count=3, name=name)
    gate = Gate()
    recorder = Recorder()
    for value in range(8):
        queue.add_task(lambda value=value: recorder(gate.pass_through(value)))
    gate.wait_inside(3)
    # Threads start inside add_task, so the set is complete once it returned.
    assert len(queue.threads) == 3
    assert len(queue) == 3 + 5
    gate.open()
    recorder.wait(count=8)
    assert sorted(recorder.calls) == list(range(8))
    assert gate.most_inside == 3
    assert set(thread.name for thread in recorder.threads) <= \
        set('%s-%d' % (name, n) for n in range(3))


def test_idle_threads_end_after_idle_timeout_and_new_work_starts_a_new_one():
    name = unique('idle')
    queue = TaskQueue(thread_count=2, idle_timeout=0.2, name=name)
    gate = Gate()
    queue.add_task(gate.pass_through)
    queue.add_task(gate.pass_through)
    gate.wait_inside(2)
    workers = list(queue.threads)
    assert len(workers) == 2
    gate.open()
    for worker in workers:
        worker.join(DEFAULT_WAIT)
        assert not worker.is_alive()
    assert len(queue) == 0

    recorder = Recorder()
    queue.add_task(recorder, 'again')
    assert recorder.wait() == 'again'
    assert recorder.threads[0].name == name + '-2'


def test_len_counts_threads_and_waiting_tasks():
    queue = TaskQueue(thread_count=1, name=unique('len'))
    assert len(queue) == 0
    gate = Gate()
    queue.add_task(gate.pass_through)
    gate.wait_inside(1)
    queue.add_task(gate.pass_through)
    queue.add_task(gate.pass_through)
    assert len(queue) == 1 + 2
    gate.open()


@pytest.mark.parametrize('arguments', [
    {'thread_count': 0}, {'thread_count': -1}, {'thread_count': 1.5},
    {'idle_timeout': -1},
])
def test_arguments_that_could_never_run_a_task_are_refused(arguments):
    with pytest.raises(ValueError):
        TaskQueue(**arguments)


# -- TaskQueue.instance ------------------------------------------------------------------

def test_instance_returns_one_queue_per_name_and_ignores_later_arguments():
    name = unique('shared')
    first = TaskQueue.instance(name, thread_count=2, idle_timeout=5)
    again = TaskQueue.instance(name, thread_count=7, idle_timeout=1)
    assert again is first
    assert (first.name, first.thread_count, first.idle_timeout) == (name, 2, 5)
    assert TaskQueue.instance(unique('other')) is not first


def test_instance_makes_one_queue_when_threads_ask_at_once():
    name = unique('race')
    start = threading.Event()
    found = []
    lock = threading.Lock()

    def ask():
        start.wait(DEFAULT_WAIT)
        queue = TaskQueue.instance(name)
        with lock:
            found.append(queue)

    askers = [threading.Thread(target=ask) for _ in range(16)]
    for asker in askers:
        asker.start()
    start.set()
    for asker in askers:
        asker.join(DEFAULT_WAIT)
    assert len(found) == 16
    assert len(set(id(queue) for queue in found)) == 1


# -- TaskQueue.yield_task ----------------------------------------------------------------

def test_yield_task_results_arrive_in_order():
    queue = TaskQueue(name=unique('yield'))

    @gen.coroutine
    def ask():
        results = yield [queue.yield_task(lambda x: x * 10, n) for n in (1, 2, 3)]
        raise gen.Return(results)

    assert run_on_new_loop(ask) == [10, 20, 30]


def test_each_future_resolves_on_the_thread_of_the_loop_that_asked():
    name = unique('two-loops')
    queue = TaskQueue(thread_count=2, name=name)
    loops = [LoopThread(name='asker-a'), LoopThread(name='asker-b')]
    try:
        def ask():
            future = queue.yield_task(lambda: threading.current_thread().name)
            settled_on = []
            future.add_done_callback(lambda _: settled_on.append(threading.current_thread()))

            @gen.coroutine
            def wait_for_it():
                worker_name = yield future
                raise gen.Return((worker_name, settled_on, threading.current_thread()))
            return wait_for_it()

        for loop_thread in loops:
            worker_name, settled_on, resumed_on = loop_thread.run(ask)
            assert worker_name.startswith(name + '-')
            assert settled_on == [loop_thread.thread]
            assert resumed_on is loop_thread.thread
    finally:
        for loop_thread in loops:
            loop_thread.stop()


def test_yield_task_exception_reaches_the_caller_with_the_tasks_traceback():
    queue = TaskQueue(name=unique('yield-error'))

    def failing_lookup(key):
        raise KeyError(key)

    @gen.coroutine
    def ask():
        try:
            yield queue.yield_task(failing_lookup, 'missing')
        except KeyError as error:
            frames = [frame[2] for frame in traceback.extract_tb(sys.exc_info()[2])]
            raise gen.Return((error.args, frames))
        raise gen.Return(None)

    args, frames = run_on_new_loop(ask)
    assert args == ('missing',)
    assert 'failing_lookup' in frames


def test_each_failing_yield_task_fails_its_own_future():
    queue = TaskQueue(name=unique('yield-errors'))

    def fail(n):
        raise RuntimeError('failure %d' % n)

    @gen.coroutine
    def ask():
        messages = []
        for future in [queue.yield_task(fail, n) for n in range(3)]:
            try:
                yield future
            except RuntimeError as error:
                messages.append(str(error))
        raise gen.Return(messages)

    assert run_on_new_loop(ask) == ['failure 0', 'failure 1', 'failure 2']


def test_stop_iteration_from_a_task_arrives_as_runtime_error():
    queue = TaskQueue(name=unique('stop-iteration'))

    def exhausted():
        return next(iter([]))

    @gen.coroutine
    def ask():
        try:
            yield queue.yield_task(exhausted)
        except RuntimeError as error:
            raise gen.Return(str(error))
        raise gen.Return('no error')

    assert 'StopIteration' in run_on_new_loop(ask)


# -- InstancePool ------------------------------------------------------------------------

def test_pool_lends_its_instances_in_turn():
    first, second = Counter(), Counter()
    pool = InstancePool([first, second], default_queue=unique('pool'))
    assert pool.increment() == 1
    assert pool.increment() == 1
    assert (first.count, second.count) == (1, 1)
    assert pool.transaction(lambda counter: counter.increment()) == 2
    assert (first.count, second.count) == (2, 1)


def test_a_single_object_is_one_instance_and_so_is_a_string():
    counter = Counter()
    pool = InstancePool(counter)
    assert [pool.increment(), pool.increment()] == [1, 2]
    assert InstancePool('abc').upper() == 'ABC'
    assert InstancePool(u'abc').upper() == u'ABC'


def test_any_iterable_gives_its_items_as_instances():
    counters = (Counter(), Counter(), Counter())
    pool = InstancePool(counter for counter in counters)
    for _ in range(3):
        pool.increment()
    assert [counter.count for counter in counters] == [1, 1, 1]


def test_an_object_that_refuses_iteration_is_one_instance():
    class Collection(Counter):
        """Like pymongo's Collection: has __iter__, but iterating raises TypeError."""

        def __iter__(self):
            return self

        def __next__(self):
            raise TypeError("'Collection' object is not iterable")

        next = __next__

    collection = Collection()
    pool = InstancePool(collection)
    assert pool.increment() == 1
    assert collection.count == 1


def test_an_empty_pool_is_refused_instead_of_blocking_every_call():
    with pytest.raises(ValueError):
        InstancePool([])


def test_an_instance_goes_back_to_the_pool_when_its_method_raises():
    counter = Counter()
    pool = InstancePool([counter])
    with pytest.raises(ValueError):
        pool.fail()
    assert finishes_within(pool.increment) == 1


def test_instance_block_borrows_one_instance_and_returns_it_even_on_error():
    counter = Counter()
    pool = InstancePool([counter])
    with pool.instance() as borrowed:
        assert borrowed is counter
        borrowed.increment()
        borrowed.increment()
    with pytest.raises(ValueError):
        with pool.instance() as borrowed:
            borrowed.fail()
    with pytest.raises(KeyError):
        pool.transaction(lambda borrowed: {}['absent'])
    assert finishes_within(pool.increment) == 3


def test_special_names_are_not_forwarded_to_the_instances():
    pool = InstancePool([Counter()])
    assert not hasattr(pool, '__deepcopy__')
    assert not hasattr(pool, '__length_hint__')


def test_async_transaction_runs_on_the_pools_default_queue():
    queue_name = unique('async-pool')
    pool = InstancePool([Counter()], default_queue=queue_name)
    recorder = Recorder()
    pool.async_transaction(lambda counter: recorder(counter.increment()))
    assert recorder.wait() == 1
    assert recorder.threads[0].name == queue_name + '-0'

    other = unique('async-other')
    pool.async_transaction(lambda counter: recorder(counter.increment()), queue_name=other)
    recorder.wait(count=2)
    assert recorder.calls[1] == 2
    assert recorder.threads[1].name == other + '-0'


def test_await_transaction_gives_a_future_of_the_result():
    queue_name = unique('await-pool')
    pool = InstancePool([Counter()], default_queue=queue_name)

    @gen.coroutine
    def ask():
        first = yield pool.await_transaction(lambda counter: counter.increment())
        second = yield pool.await_transaction(
            lambda counter: (counter.increment(), threading.current_thread().name))
        raise gen.Return((first, second))

    assert run_on_new_loop(ask) == (1, (2, queue_name + '-0'))


def test_await_transaction_failure_fails_the_future_and_returns_the_instance():
    pool = InstancePool([Counter()], default_queue=unique('await-fail'))

    @gen.coroutine
    def ask():
        try:
            yield pool.await_transaction(lambda counter: counter.fail())
        except ValueError as error:
            raise gen.Return(str(error))

    assert run_on_new_loop(ask) == 'counter failed'
    assert finishes_within(pool.increment) == 1


def test_await_is_reachable_under_its_python_2_name():
    queue_name = unique('await-name')
    first, second = Counter(), Counter()
    pool = InstancePool([first, second], default_queue=queue_name)
    awaitable = getattr(pool, 'await')()
    assert isinstance(awaitable, AwaitableInstance)
    assert awaitable.task_queue is TaskQueue.instance(queue_name)

    @gen.coroutine
    def ask():
        results = []
        for _ in range(4):
            results.append((yield getattr(pool, 'await')().increment()))
        results.append((yield pool.await_().increment()))
        raise gen.Return(results)

    assert run_on_new_loop(ask) == [1, 1, 2, 2, 3]
    assert (first.count, second.count) == (3, 2)


def test_await_takes_another_queue_by_name():
    other = unique('await-other')
    pool = InstancePool([Counter()], default_queue=unique('await-default'))
    assert pool.await_(other).task_queue is TaskQueue.instance(other)


def test_pool_instances_work_at_the_same_time_on_a_queue_with_as_many_threads():
    queue_name = unique('concurrent-pool')
    TaskQueue.instance(queue_name, thread_count=2)
    gate = Gate()

    class Member(object):
        def meet(self):
            gate.pass_through()
            return self

    members = [Member(), Member()]
    pool = InstancePool(members, default_queue=queue_name)

    @gen.coroutine
    def ask():
        both = [pool.await_().meet(), pool.await_().meet()]
        # Both calls must be inside meet() together, each with its own instance.
        yield TaskQueue(name=unique('helper')).yield_task(gate.wait_inside, 2)
        gate.open()
        met = yield both
        raise gen.Return(met)

    met = run_on_new_loop(ask)
    assert gate.most_inside == 2
    assert set(id(member) for member in met) == set(id(member) for member in members)


# -- AwaitableInstance -------------------------------------------------------------------

def test_awaitable_instance_runs_each_call_on_its_queue():
    queue_name = unique('awaitable')
    counter = Counter()
    counter.increment()
    awaitable = AwaitableInstance(counter, queue_name)

    @gen.coroutine
    def ask():
        values = []
        for _ in range(3):
            values.append((yield awaitable.increment()))
        worker = yield AwaitableInstance(threading, queue_name).current_thread()
        raise gen.Return((values, worker.name))

    values, worker_name = run_on_new_loop(ask)
    assert values == [2, 3, 4]
    assert counter.count == 4
    assert worker_name == queue_name + '-0'


def test_awaitable_instance_failure_fails_the_future():
    awaitable = AwaitableInstance(Counter(), unique('awaitable-fail'))

    @gen.coroutine
    def ask():
        try:
            yield awaitable.fail()
        except ValueError as error:
            raise gen.Return(str(error))

    assert run_on_new_loop(ask) == 'counter failed'


def test_awaitable_instance_uses_the_shared_pool_queue_by_default():
    awaitable = AwaitableInstance(Counter())
    assert awaitable.task_queue is TaskQueue.instance('pool')
