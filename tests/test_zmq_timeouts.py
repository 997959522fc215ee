"""ZMQWorkerConnection: timeouts, retries, late answers and pending-call bookkeeping (SPEC 4).

Timeouts are small (0.2 s) so the whole module stays fast; a sweep runs every
abs(timeout) seconds, so a call expires between t and 2t after it was sent.
"""

import time

import pytest

from support import Recorder, free_port, wait_until

TIMEOUT = 0.2


def test_timeout_without_retry_delivers_error_dict(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT)
    recorder = Recorder()
    started = time.time()
    conn.invoke('sleep', {'seconds': 2.0}, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}
    elapsed = time.time() - started
    assert TIMEOUT * 0.9 <= elapsed < 1.5, elapsed
    assert len(conn) == 0
    # A retry would have been sent before the timeout was delivered; under load the
    # worker may not have read even the first call yet.
    wait_until(lambda: zmq_worker.calls_of('sleep'))
    assert len(zmq_worker.calls_of('sleep')) == 1, 'no retry without auto_retry'


def test_per_call_timeout_overrides_the_connection_default(zmq_worker, zmq_conn):
    recorder = Recorder()
    started = time.time()
    zmq_conn.invoke('sleep', {'seconds': 2.0}, timeout=TIMEOUT, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}
    assert time.time() - started < 1.5


def test_timeout_with_await_resolves_the_future_with_the_error(zmq_worker, make_zmq_conn,
                                                              io_loop):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT)

    def call():
        return conn.invoke('sleep', {'seconds': 2.0}, **{'await': True})

    assert io_loop.run_sync(call, timeout=5) == {'error': 'timeout'}


def test_auto_retry_resends_the_same_message_until_a_worker_answers(zmq_worker,
                                                                    make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=True)
    recorder = Recorder()
    conn.invoke('slow_once', {'seconds': 3.0}, callback=recorder)
    result = recorder.wait()
    assert result['attempt'] >= 2, result
    calls = zmq_worker.calls_of('slow_once')
    assert len(calls) >= 2
    assert len(set(call['message_id'] for call in calls)) == 1, 'a retry reuses the id'
    assert recorder.count == 1
    assert len(conn) == 0


def test_per_call_auto_retry_overrides_the_connection_default(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=False)
    recorder = Recorder()
    conn.invoke('slow_once', {'seconds': 3.0}, auto_retry=True, callback=recorder)
    assert recorder.wait()['attempt'] >= 2


def test_per_call_auto_retry_false_overrides_a_retrying_connection(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=True)
    recorder = Recorder()
    conn.invoke('slow_once', {'seconds': 3.0}, auto_retry=False, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}
    wait_until(lambda: zmq_worker.calls_of('slow_once'))  # read late under load
    assert len(zmq_worker.calls_of('slow_once')) == 1


def test_negative_call_timeout_never_times_out(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=True)
    recorder = Recorder()
    conn.invoke('sleep', {'seconds': 0.5}, timeout=-1, callback=recorder)
    assert recorder.wait() == {'slept': 0.5, 'worker': zmq_worker.worker_id}
    assert len(zmq_worker.calls_of('sleep')) == 1, 'a negative timeout never retries'


def test_negative_connection_timeout_never_expires_or_retries(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=-TIMEOUT, auto_retry=True)
    recorder = Recorder()
    conn.invoke('sleep', {'seconds': 0.5}, callback=recorder)
    assert recorder.wait() == {'slept': 0.5, 'worker': zmq_worker.worker_id}
    assert len(zmq_worker.calls_of('sleep')) == 1


def test_late_answer_is_dropped_and_the_call_completes_once(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT)
    recorder = Recorder()
    conn.invoke('sleep', {'seconds': 0.6}, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}
    late_id = zmq_worker.calls_of('sleep')[0]['message_id']
    zmq_worker.wait_for(lambda worker: late_id in worker.replies)
    # The late answer was sent before this call, on the same path, so the client
    # has read (and dropped) it by the time this answer arrives.
    after = Recorder()
    conn.invoke('echo', {'after': 'late'}, callback=after)
    assert after.wait() == {'after': 'late'}
    assert recorder.calls == [{'error': 'timeout'}]
    assert len(conn) == 0


def test_retried_call_completes_once_although_both_attempts_answer(zmq_worker,
                                                                   make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=True)
    recorder = Recorder()
    conn.invoke('slow_once', {'seconds': 0.6}, callback=recorder)
    assert recorder.wait()['attempt'] >= 2
    message_id = zmq_worker.calls_of('slow_once')[0]['message_id']
    zmq_worker.wait_for(
        lambda worker: worker.replies.count(message_id) == len(worker.calls_of('slow_once')))
    after = Recorder()
    conn.invoke('echo', {}, callback=after)
    after.wait()
    assert recorder.count == 1


def test_len_counts_pending_calls_and_returns_to_zero(zmq_worker, zmq_conn):
    assert len(zmq_conn) == 0
    recorder = Recorder()
    for _ in range(3):
        zmq_conn.invoke('sleep', {'seconds': 0.2}, callback=recorder)
    assert len(zmq_conn) == 3
    recorder.wait(count=3)
    wait_until(lambda: len(zmq_conn) == 0)


def test_many_completed_calls_leave_nothing_pending(zmq_conn):
    recorder = Recorder()
    for index in range(300):
        zmq_conn.invoke('echo', {'i': index}, callback=recorder)
    recorder.wait(count=300)
    assert sorted(result['i'] for result in recorder.calls) == list(range(300))
    wait_until(lambda: len(zmq_conn) == 0)


def test_expired_calls_leave_nothing_pending(zmq_worker, make_zmq_conn):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT)
    recorder = Recorder()
    for _ in range(6):
        conn.invoke('sleep', {'seconds': 5.0}, callback=recorder)
    recorder.wait(count=6)
    assert recorder.calls == [{'error': 'timeout'}] * 6
    assert len(conn) == 0



def test_call_to_an_address_where_nobody_listens_times_out(make_zmq_conn):
    conn = make_zmq_conn('tcp://127.0.0.1:%d' % free_port(), timeout=TIMEOUT)
    recorder = Recorder()
    conn.invoke('echo', {}, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}
    assert len(conn) == 0


@pytest.mark.timeout(60)
def test_burst_of_calls_larger_than_the_socket_queues_all_complete(zmq_conn):
    count = 5000
    recorder = Recorder()
    for index in range(count):
        zmq_conn.invoke('echo', index, callback=recorder)
    recorder.wait(count=count, timeout=30)
    assert sorted(recorder.calls) == list(range(count))
    wait_until(lambda: len(zmq_conn) == 0)


def test_auto_retry_of_a_call_awaited_on_a_running_loop(zmq_worker, make_zmq_conn, io_loop):
    conn = make_zmq_conn(zmq_worker.address, timeout=TIMEOUT, auto_retry=True)

    def call():
        return conn.invoke('slow_once', {'seconds': 3.0}, **{'await': True})

    assert io_loop.run_sync(call, timeout=5)['attempt'] >= 2
    assert len(set(c['message_id'] for c in zmq_worker.calls_of('slow_once'))) == 1
