"""ZMQWorkerConnection flow control: at most max_in_flight calls on the wire per address.

Each test talks to a :class:`zmqworker.ManualRouter`, a bare ROUTER that answers only
when the test says so, so what the client has put on the wire can be seen call by call.
"""

import collections
import threading

import pytest

from support import LoopThread, Recorder, free_port
from zmqworker import DroppingRouter, ManualRouter

#: Long enough for a call that could be sent to arrive; what has not arrived by then
#: was held back by the client.
QUIET = 0.3


@pytest.fixture
def router():
    with ManualRouter() as manual:
        yield manual


def numbers(calls):
    return [call['parameters']['i'] for call in calls]


def answer_all(router, calls):
    for call in calls:
        router.answer(call)


def test_calls_beyond_max_in_flight_wait_and_go_out_in_order_as_answers_come_back(
        router, make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 3
    recorder = Recorder()
    for index in range(10):
        conn.invoke('echo', {'i': index}, callback=recorder)

    first = router.receive(3)
    assert numbers(first) == [0, 1, 2]
    assert router.received_within(QUIET) == []
    answer_all(router, first[:2])
    second = router.receive(2)
    assert numbers(second) == [3, 4]
    assert router.received_within(QUIET) == []

    arrived = first + second
    answer_all(router, [first[2]] + second)
    while len(arrived) < 10:
        more = router.receive(1)
        arrived.extend(more)
        answer_all(router, more)
    recorder.wait(count=10)
    assert numbers(arrived) == list(range(10))
    assert sorted(result['i'] for result in recorder.calls) == list(range(10))
    assert recorder.count == 10
    assert len(conn) == 0


def test_the_bound_is_shared_by_every_thread_and_loop(router, make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 4
    recorder = Recorder()
    loop_thread = LoopThread()
    try:
        for index in range(4):
            conn.invoke('echo', {'i': index}, callback=recorder)
        loop_thread.run(lambda: [conn.invoke('echo', {'i': index}, callback=recorder)
                                 for index in range(4, 8)])

        first = router.receive(4)
        assert router.received_within(QUIET) == []
        answer_all(router, first)
        second = router.receive(4)
        answer_all(router, second)
        arrived = first + second
        recorder.wait(count=8)
        assert sorted(numbers(arrived)) == list(range(8))
        assert sorted(result['i'] for result in recorder.calls) == list(range(8))
        # Each answer came where its call was made: the I/O thread or the loop thread.
        threads = set(thread.name for thread in recorder.threads)
        assert threads == {'toto-zmq-connection', loop_thread.thread.name}
    finally:
        loop_thread.stop()


def test_a_call_waiting_for_room_times_out_from_invoke_and_is_never_sent(router,
                                                                        make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 1
    holder, waiting = Recorder(), Recorder()
    conn.invoke('echo', {'i': 0}, callback=holder, timeout=10.0)
    for index in (1, 2):
        conn.invoke('echo', {'i': index}, callback=waiting, timeout=0.3)

    first = router.receive(1)
    waiting.wait(count=2, timeout=2.0)
    assert waiting.calls == [{'error': 'timeout'}] * 2

    router.answer(first[0])
    assert holder.wait() == {'i': 0}
    assert router.received_within(QUIET) == [], 'expired calls are never sent'
    assert len(conn) == 0


def test_a_retried_call_goes_out_again_with_the_same_id_and_completes_once(router,
                                                                           make_zmq_conn):
    conn = make_zmq_conn(router.address, timeout=0.3, auto_retry=True)
    conn.max_in_flight = 1
    recorder = Recorder()
    conn.invoke('echo', {'i': 7}, callback=recorder)

    first_attempt = router.receive(1)[0]
    second_attempt = router.receive(1, timeout=2.0)[0]
    assert second_attempt['message_id'] == first_attempt['message_id']
    router.answer(second_attempt)
    assert recorder.wait() == {'i': 7}
    router.answer(first_attempt)  # late: dropped

    after = Recorder()
    conn.invoke('echo', {'i': 8}, callback=after, auto_retry=False, timeout=5.0)
    router.answer(next(call for call in router.receive(1, timeout=2.0)
                       if call['parameters'] == {'i': 8}))
    assert after.wait() == {'i': 8}
    assert recorder.count == 1


def test_a_retry_answered_by_its_first_attempt_leaves_the_queue_and_its_room(
        router, make_zmq_conn):
    conn = make_zmq_conn(router.address, timeout=0.3)
    conn.max_in_flight = 1
    retried, waiting = Recorder(), Recorder()
    conn.invoke('echo', {'i': 0}, callback=retried, auto_retry=True)
    first_attempt = router.receive(1)[0]
    conn.invoke('echo', {'i': 1}, callback=waiting, timeout=10.0)

    # Call 0 times out and queues behind call 1, which gets its room.
    other = router.receive(1, timeout=2.0)[0]
    assert other['parameters'] == {'i': 1}
    router.answer(first_attempt)  # late, but it completes call 0
    assert retried.wait() == {'i': 0}
    router.answer(other)
    assert waiting.wait() == {'i': 1}

    # Call 0 is not sent again, and the room is all there for the next call.
    after = Recorder()
    conn.invoke('echo', {'i': 2}, callback=after, timeout=10.0)
    next_call = router.receive(1)[0]
    assert next_call['parameters'] == {'i': 2}
    router.answer(next_call)
    assert after.wait() == {'i': 2}
    assert router.received_within(QUIET) == []
    assert retried.count == 1 and len(conn) == 0


def test_a_call_that_never_expires_gives_back_its_room_after_abs_timeout(router,
                                                                         make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 1
    never, normal = Recorder(), Recorder()
    conn.invoke('echo', {'i': 0}, callback=never, timeout=-0.3)
    conn.invoke('echo', {'i': 1}, callback=normal)

    parked = router.receive(1)[0]
    assert parked['parameters'] == {'i': 0}
    # The worker never answered call 0 in 0.3 s: call 1 gets its room.
    follower = router.receive(1, timeout=2.0)[0]
    assert follower['parameters'] == {'i': 1}
    router.answer(follower)
    assert normal.wait() == {'i': 1}
    assert len(conn) == 1 and never.count == 0, 'call 0 still waits for its answer'
    router.answer(parked)
    assert never.wait() == {'i': 0}
    assert len(conn) == 0


def test_raising_max_in_flight_sends_waiting_calls_at_once(router, make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 1
    recorder = Recorder()
    for index in range(3):
        conn.invoke('echo', {'i': index}, callback=recorder)
    arrived = router.receive(1)
    assert router.received_within(QUIET) == []

    conn.max_in_flight = 3

    arrived.extend(router.receive(2))
    assert numbers(arrived) == [0, 1, 2]
    answer_all(router, arrived)
    recorder.wait(count=3)


def test_close_completes_waiting_calls_once_with_closed(router, make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 1
    recorder = Recorder()
    for index in range(3):
        conn.invoke('echo', {'i': index}, callback=recorder)
    router.receive(1)

    conn.close()

    recorder.wait(count=3)
    assert recorder.calls == [{'error': 'closed'}] * 3
    assert router.received_within(QUIET) == []


def test_calls_waiting_for_room_go_to_an_address_added_later(make_zmq_conn):
    with ManualRouter() as full, ManualRouter() as added:
        conn = make_zmq_conn(full.address)
        conn.max_in_flight = 1
        recorder = Recorder()
        for index in range(3):
            conn.invoke('echo', {'i': index}, callback=recorder)
        held = full.receive(1)

        conn.add_connection(added.address)

        moved = added.receive(1)
        answer_all(added, moved)
        moved.extend(added.receive(1))
        answer_all(added, moved[1:])
        assert numbers(held) == [0] and numbers(moved) == [1, 2]
        recorder.wait(count=2)
        answer_all(full, held)
        recorder.wait(count=3)
        assert sorted(result['i'] for result in recorder.calls) == [0, 1, 2]


def test_max_in_flight_zero_means_no_bound(router, make_zmq_conn):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 0
    recorder = Recorder()
    for index in range(50):
        conn.invoke('echo', {'i': index}, callback=recorder)

    arrived = router.receive(50)

    answer_all(router, arrived)
    recorder.wait(count=50)


@pytest.mark.parametrize('value, error', [(-1, ValueError), (1.5, TypeError),
                                          (True, TypeError), ('3', TypeError),
                                          (None, TypeError)])
def test_bad_max_in_flight_raises_and_keeps_the_old_bound(router, make_zmq_conn, value,
                                                          error):
    conn = make_zmq_conn(router.address)
    conn.max_in_flight = 2
    with pytest.raises(error):
        conn.max_in_flight = value
    assert conn.max_in_flight == 2


def test_worker_max_in_flight_option_sets_the_bound_of_new_connections(worker_options,
                                                                       router):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    assert worker_options.worker_max_in_flight == 500
    worker_options.worker_max_in_flight = 7
    worker_options.worker_address = router.address

    assert ZMQWorkerConnection.instance().max_in_flight == 7
    conn = ZMQWorkerConnection(router.address)
    try:
        assert conn.max_in_flight == 7
    finally:
        conn.close()


def test_bad_worker_max_in_flight_option_is_a_clear_error(worker_options, router):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    worker_options.worker_max_in_flight = -5
    with pytest.raises(ValueError, match='max_in_flight'):
        ZMQWorkerConnection(router.address)


@pytest.mark.stress  # 40,000 calls: once per libzmq line (tox.ini)
def test_connections_dropping_while_calls_are_written_give_back_all_their_room(
        make_zmq_conn):
    # Calls stream out (no bound yet) to a peer that never answers and drops its
    # connections every 20 ms, so now and then a connection goes away in the middle of
    # a call being written: libzmq then refuses one of the call's later frames.  Every
    # call ends exactly once, and with a bound set afterwards a whole window of calls
    # goes out at once: none of the refused calls kept its room.
    address = 'tcp://127.0.0.1:%d' % free_port()
    conn = make_zmq_conn(address, timeout=0.05)
    conn.max_in_flight = 0
    rounds, per_round = 80, 500
    ended = collections.Counter()
    lock = threading.Lock()
    round_over = threading.Event()

    def record(index):
        def callback(result):
            with lock:
                ended[index] += 1
                if len(ended) % per_round == 0:
                    round_over.set()
        return callback

    dropping = DroppingRouter(address)
    try:
        for round_number in range(rounds):
            round_over.clear()
            first = round_number * per_round
            for index in range(first, first + per_round):
                conn.invoke('echo', {'i': index}, callback=record(index))
            assert round_over.wait(5.0), 'round %d never ended' % round_number
    finally:
        dropping.stop()
    assert len(ended) == rounds * per_round
    assert set(ended.values()) == {1}
    assert dropping.received > 0

    conn.max_in_flight = bound = 50
    with ManualRouter(address) as router:
        recorder = Recorder()
        for index in range(bound):
            conn.invoke('echo', {'i': index}, callback=recorder, timeout=10.0)
        answer_all(router, router.receive(bound))
        recorder.wait(count=bound)
