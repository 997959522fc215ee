"""ZMQWorkerConnection: threads, loops, close/stop/start (SPEC 6)."""

import os
import threading

import pytest
from concurrent.futures import Future as ThreadFuture
from tornado import gen
from tornado.concurrent import Future as LoopFuture

from support import LoopThread, Recorder, new_io_loop, wait_until


def test_callback_from_a_thread_running_an_ioloop_runs_on_that_loop(zmq_conn):
    loop_thread = LoopThread(name='caller-loop')
    try:
        recorder = Recorder()
        loop_thread.run(lambda: zmq_conn.invoke('echo', {'on': 'loop'}, callback=recorder))
        assert recorder.wait() == {'on': 'loop'}
        assert recorder.threads == [loop_thread.thread]
    finally:
        loop_thread.stop()


def test_await_from_a_thread_running_an_ioloop_gives_a_loop_future(zmq_conn):
    loop_thread = LoopThread(name='caller-loop')
    try:
        @gen.coroutine
        def call():
            future = zmq_conn.invoke('echo', {'n': 1}, **{'await': True})
            assert isinstance(future, LoopFuture)
            result = yield future
            raise gen.Return((result, threading.current_thread()))

        result, thread = loop_thread.run(call)
        assert result == {'n': 1}
        assert thread is loop_thread.thread
    finally:
        loop_thread.stop()


def test_callback_from_a_plain_thread_runs_on_the_connection_thread(zmq_conn):
    recorder = Recorder()
    callers = [threading.current_thread()]

    def call():
        callers.append(threading.current_thread())
        zmq_conn.invoke('echo', {'from': 'plain thread'}, callback=recorder)

    zmq_conn.invoke('echo', {'from': 'main thread'}, callback=recorder)
    caller = threading.Thread(target=call, name='plain-caller')
    caller.start()
    caller.join(5)
    recorder.wait(count=2)
    callback_threads = set(recorder.threads)
    assert len(callback_threads) == 1, 'all go to the one connection thread'
    connection_thread = callback_threads.pop()
    assert connection_thread not in callers
    assert connection_thread.is_alive()


def test_await_from_a_plain_thread_gives_a_future_with_a_result(zmq_conn):
    future = zmq_conn.invoke('echo', {'plain': True}, **{'await': True})
    assert isinstance(future, ThreadFuture)
    assert future.result(timeout=5) == {'plain': True}


def test_callbacks_from_two_loops_each_run_on_their_own_loop(zmq_conn):
    loops = [LoopThread(name='caller-loop-a'), LoopThread(name='caller-loop-b')]
    try:
        recorders = [Recorder(), Recorder()]
        for loop_thread, recorder in zip(loops, recorders):
            loop_thread.run(lambda recorder=recorder: [
                zmq_conn.invoke('echo', {'i': i}, callback=recorder) for i in range(5)])
        for loop_thread, recorder in zip(loops, recorders):
            recorder.wait(count=5)
            assert set(recorder.threads) == set([loop_thread.thread])
    finally:
        for loop_thread in loops:
            loop_thread.stop()


def test_calls_from_eight_threads_at_once_all_complete_exactly_once(zmq_conn):
    threads_count, calls_per_thread = 8, 25
    recorder = Recorder()
    go = threading.Event()
    errors = []

    def caller(index):
        go.wait(5)
        try:
            for number in range(calls_per_thread):
                zmq_conn.invoke('echo', {'thread': index, 'number': number}, callback=recorder)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(10)
    assert errors == []
    total = threads_count * calls_per_thread
    recorder.wait(count=total, timeout=10)
    # One more round trip: any duplicate completion would have arrived before it.
    last = Recorder()
    zmq_conn.invoke('echo', {'last': True}, callback=last)
    last.wait()
    keys = sorted((result['thread'], result['number']) for result in recorder.calls)
    assert keys == sorted((t, n) for t in range(threads_count) for n in range(calls_per_thread))
    wait_until(lambda: len(zmq_conn) == 0)


def test_close_fails_pending_calls_and_releases_the_thread(zmq_worker):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    before = set(threading.enumerate())
    conn = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    recorder = Recorder()
    try:
        conn.invoke('sleep', {'seconds': 30}, callback=recorder)
        conn.invoke('sleep', {'seconds': 30}, callback=recorder)
        zmq_worker.wait_for(lambda worker: len(worker.calls) == 2)
        own_threads = set(threading.enumerate()) - before
        assert own_threads, 'the connection runs its own thread'
        assert len(conn) == 2
    finally:
        conn.close()
    recorder.wait(count=2)
    assert recorder.calls == [{'error': 'closed'}, {'error': 'closed'}]
    for thread in own_threads:
        thread.join(5)
        assert not thread.is_alive(), thread
    assert len(conn) == 0


def test_close_resolves_an_awaited_call_on_the_callers_loop(zmq_worker):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    conn = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    loop_thread = LoopThread(name='caller-loop')
    try:
        futures = []
        loop_thread.run(lambda: futures.append(
            conn.invoke('sleep', {'seconds': 30}, **{'await': True})))
        zmq_worker.wait_for(lambda worker: len(worker.calls) == 1)
        conn.close()

        @gen.coroutine
        def outcome():
            result = yield futures[0]
            raise gen.Return(result)

        assert loop_thread.run(outcome) == {'error': 'closed'}
    finally:
        conn.close()
        loop_thread.stop()


def test_close_twice_is_harmless(zmq_worker):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    conn = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    recorder = Recorder()
    conn.invoke('echo', {'before': 'close'}, callback=recorder)
    assert recorder.wait() == {'before': 'close'}
    conn.close()
    conn.close()
    assert len(conn) == 0


def test_stop_pauses_the_connection_thread_until_start(zmq_conn):
    ready = Recorder()
    zmq_conn.invoke('echo', {}, callback=ready)
    ready.wait()
    connection_thread = ready.threads[0]
    zmq_conn.stop()
    zmq_conn.join(5)
    assert not connection_thread.is_alive()

    recorder = Recorder()
    zmq_conn.invoke('echo', {'after': 'stop'}, callback=recorder)
    zmq_conn.start()
    assert recorder.wait() == {'after': 'stop'}
    assert recorder.threads[0].is_alive()


def open_descriptors():
    return len(os.listdir('/proc/self/fd'))


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='needs /proc/self/fd')
def test_close_releases_descriptors_of_loops_that_closed_before_it(zmq_worker):
    # Applications run short-lived loops (run_sync on a fresh IOLoop, closed the
    # default way): whatever the connection opened for each must be released by close().
    from toto.zmqworkerconnection import ZMQWorkerConnection
    warm_up = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    assert warm_up.invoke('echo', {}, **{'await': True}).result(5) == {}
    warm_up.close()
    baseline = open_descriptors()

    conn = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    for index in range(10):
        loop = new_io_loop()
        try:
            assert loop.run_sync(
                lambda index=index: conn.invoke('echo', {'i': index}, **{'await': True}),
                timeout=5) == {'i': index}
        finally:
            loop.close()
    conn.close()
    # ZeroMQ closes socket descriptors in its own thread: give it a moment.
    wait_until(lambda: open_descriptors() <= baseline, timeout=2.0,
               message=lambda: 'descriptors left open: %d' % (open_descriptors() - baseline))
