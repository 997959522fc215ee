"""Bursts: every call answered exactly once, however many are sent at once.

A ZeroMQ ``ROUTER`` drops an answer when its queue towards a client is full, so a
client that sends faster than it reads used to lose answers for work that was done.
These cases send bursts far larger than any socket queue -- from one loop, from a plain
thread, and from several client processes at once -- at the real worker service with
1, 2 and 4 processes and at ``tests/zmqworker.py``, a ROUTER with ZeroMQ's default
queues (as the original package's service has).  Every call must come back once, with
its own answer.

They are marked ``stress``: ``-m 'not stress'`` leaves them out of a quick run.
"""

import json
import os
import pickle
import signal

import pytest
import zmq
from burstclient import from_loop, from_thread
from faultkit import CompactTally, classify, pickled_call
from support import wait_until

#: A call's timeout in a burst: longer than any burst takes, so a call that times out
#: was lost, not slow.
BURST_TIMEOUT = 60.0

TARGETS = {
    'test worker (default queues)': None,
    'service, 1 process': 1,
    'service, 2 processes': 2,
    'service, 4 processes': 4,
}

pytestmark = pytest.mark.stress


@pytest.fixture(params=sorted(TARGETS))
def target(request, lab):
    """``(name, address)`` of a running worker to send bursts at."""
    processes = TARGETS[request.param]
    if processes is None:
        if os.environ.get('TOTO_TEST_DISPATCH'):
            # The queue environment runs these again for the service's other dispatch
            # mode; the test worker has none, and its bursts ran in the default one.
            pytest.skip('the test worker has no dispatch mode')
        worker = lab.test_worker()
        request.node.test_worker = worker
    else:
        worker = lab.zmq_service(processes=processes)
    return request.param, worker.address


def worker_totals(request):
    """The test worker's count of calls received and answers sent, when the target is it."""
    worker = getattr(request.node, 'test_worker', None)
    if worker is None or not worker.is_running():
        return None
    seen = worker.output().count('TOTALS')
    os.kill(worker.pid, signal.SIGUSR1)
    try:
        wait_until(lambda: worker.output().count('TOTALS') > seen, 10)
    except AssertionError:
        return 'no TOTALS line from the test worker'
    return worker.output().strip().splitlines()[-1]


def assert_every_call_answered_once(counts, sent, request=None):
    # When a call is missing, the test worker's totals tell where it went:
    # calls < sent, lost on the way in; replies == sent, lost on the way back.
    where = worker_totals(request) if request is not None and (
        counts['answered'] != sent or counts['timed_out']) else None
    assert counts['sent'] == sent, (counts, where)
    assert counts['lost'] == 0, (counts, where)
    assert counts['duplicates'] == 0, (counts, where)
    assert counts['timed_out'] == 0, (counts, where)
    assert counts['answered'] == sent, (counts, where)


@pytest.mark.timeout(300)
def test_burst_of_100000_calls_from_a_loop_is_answered_exactly_once(lab, target,
                                                                    fault_report, request):
    name, address = target
    connection = lab.connect(address, timeout=BURST_TIMEOUT)

    burst = from_loop(connection, 100000, BURST_TIMEOUT)

    counts = burst.counts()
    fault_report('burst: 100,000 calls from a loop, %s' % name, counts,
                 seconds=counts['seconds'])
    assert_every_call_answered_once(counts, 100000, request)
    assert len(connection) == 0


@pytest.mark.timeout(300)
def test_burst_of_30000_callbacks_from_a_plain_thread_is_answered_exactly_once(
        lab, target, fault_report, request):
    name, address = target
    connection = lab.connect(address, timeout=BURST_TIMEOUT)

    burst = from_thread(connection, 30000, BURST_TIMEOUT)

    counts = burst.counts()
    fault_report('burst: 30,000 callbacks from a thread, %s' % name, counts,
                 seconds=counts['seconds'])
    assert_every_call_answered_once(counts, 30000, request)
    wait_until(lambda: len(connection) == 0)


@pytest.mark.timeout(400)
def test_four_client_processes_of_20000_calls_at_once_are_answered_exactly_once(
        lab, target, fault_report, request):
    name, address = target
    clients = [lab.burst_client(address, 20000, style, BURST_TIMEOUT)
               for style in ('loop', 'thread', 'loop', 'thread')]

    for client in clients:
        wait_until(lambda client=client: not client.is_running(), 2 * BURST_TIMEOUT + 30,
                   interval=0.1,
                   message=lambda client=client: 'client still running\n' + client.describe())
    summaries = []
    for client in clients:
        assert client.process.returncode == 0, client.describe()
        summaries.append(json.loads(client.output().strip().splitlines()[-1]))

    counts = dict((key, sum(summary[key] for summary in summaries))
                  for key in ('sent', 'answered', 'timed_out', 'errors', 'lost',
                              'duplicates', 'pending_after'))
    seconds = max(summary['seconds'] for summary in summaries)
    fault_report('burst: 4 client processes x 20,000 calls, %s' % name, counts,
                 seconds=seconds)
    assert_every_call_answered_once(counts, 80000, request)
    assert counts['pending_after'] == 0


@pytest.mark.timeout(120)
def test_service_keeps_every_answer_for_a_client_that_does_not_read(lab, fault_report):
    # A bare DEALER, like the original client, sends everything before it reads a
    # single answer: the service must hold the answers, not drop them.
    service = lab.zmq_service(processes=2)
    dealer = lab.raw_dealer(service.address)
    count = 20000
    for number in range(count):
        dealer.send_multipart([b'', b'call-%d' % number, pickled_call('echo', {'i': number})])

    tally = CompactTally(count)
    for _ in range(count):
        tally.register()
    for _ in range(count):
        if not dealer.poll(BURST_TIMEOUT * 1000, zmq.POLLIN):
            break  # what never came is counted as lost
        _, message_id, payload = dealer.recv_multipart()
        number = int(message_id.split(b'-')[1])
        result = pickle.loads(payload)
        tally.complete(number, 'answered' if result == {'i': number} else 'errors', result)

    counts = tally.counts()
    fault_report('burst: 20,000 calls from a DEALER that reads only after sending', counts)
    assert counts['answered'] == count, counts
    assert counts['lost'] == 0 and counts['duplicates'] == 0, counts


@pytest.mark.timeout(120)
def test_saturated_service_times_calls_out_and_says_so_in_its_log(lab, fault_report):
    # One process, calls of 50 ms, a 0.5 s timeout: most calls cannot be answered in
    # time.  Each still completes once, and the worker logs that calls queue.
    service = lab.zmq_service(processes=1, args=['--saturation_warning_after=0.3'])
    connection = lab.connect(service.address, timeout=0.5)
    tally = CompactTally(200)
    for _ in range(200):
        number = tally.register()
        connection.invoke('late', {'seconds': 0.05},
                          callback=lambda result, number=number: tally.complete(
                              number, classify(result), result))

    assert tally.wait_all(30), tally.counts()
    counts = tally.counts()
    fault_report('saturated service: 200 calls of 50 ms, 0.5 s timeout, 1 process', counts)
    assert counts['lost'] == 0 and counts['duplicates'] == 0, counts
    assert counts['timed_out'] > 0 and counts['answered'] > 0, counts
    assert counts['answered'] + counts['timed_out'] == 200, counts
    assert len(connection) == 0
    wait_until(lambda: 'caught up after' in service.output(), 30,
               message=service.describe)
    assert 'saturated: calls have queued for' in service.output()
