"""Workers killed with SIGKILL while calls are in flight (real processes, loopback TCP).

Without retry every call ends as ``{'error': 'timeout'}`` within two timeouts; with
retry every call is answered by a worker that survived; no call completes twice.
"""

import os
import signal
import time

import pytest
from faultkit import Tally, pids_answering, wait_for_file
from support import LoopThread

# Short timeouts keep the suite fast; a call expires between t and 2t after it is sent.
TIMEOUT = 0.5
# Scheduling slack on a loaded two-core machine, on top of the 2t bound.
SLACK = 0.5
CALLS = 20


def park_parameters(n, marker, park=True):
    return {'n': n, 'park': park, 'marker': marker, 'seconds': 30.0}


@pytest.mark.timeout(30)
def test_zmq_killed_worker_without_retry_times_every_call_out(lab, fault_report):
    service = lab.zmq_service(processes=1)
    connection = lab.connect(service.address, timeout=TIMEOUT)
    marker = lab.path('parked')
    tally = Tally()

    for n in range(CALLS):
        connection.invoke('park', park_parameters(n, marker), callback=tally.callback(n))
    parked_pid = int(wait_for_file(marker))
    os.kill(parked_pid, signal.SIGKILL)
    finished = tally.wait_all(2 * TIMEOUT + 5)

    counts = tally.counts()
    slowest = max(tally.latencies())
    fault_report('zmq: worker process killed (SIGKILL) with calls in flight, no retry',
                 counts, transport='zmq', timeout=TIMEOUT, slowest=round(slowest, 3))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['timed_out'] == CALLS, counts
    assert slowest <= 2 * TIMEOUT + SLACK, 'a call took %.2f s to time out' % slowest
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_zmq_auto_retry_moves_calls_of_a_killed_service_to_the_survivor(lab, fault_report):
    doomed = lab.zmq_service(env={'TOTO_FAULT_PARK': '1'})
    survivor = lab.zmq_service()
    survivor_pid = survivor.first_answer['pid']
    connection = lab.connect([doomed.address, survivor.address], timeout=TIMEOUT,
                             auto_retry=True)
    # Calls go to the workers connected at the time: wait until both links are up.
    pids_answering(connection, 2)
    marker = lab.path('parked')
    tally = Tally()

    for n in range(CALLS):
        connection.invoke('park', park_parameters(n, marker, park=False),
                          callback=tally.callback(n))
    wait_for_file(marker)
    doomed.end(signal.SIGKILL)   # the router and its worker process, at once
    finished = tally.wait_all(10)

    counts = tally.counts()
    retried = len([latency for latency in tally.latencies() if latency >= TIMEOUT])
    fault_report('zmq: one of two services killed (SIGKILL), auto_retry', counts,
                 transport='zmq', timeout=TIMEOUT, retried=retried)
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == CALLS, counts
    for n in range(CALLS):
        assert tally.first(n) == {'pid': survivor_pid, 'n': n}
    assert retried > 0, 'no call was in flight on the killed service'
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_zmq_auto_retry_survives_one_killed_worker_process_behind_a_router(lab, fault_report):
    service = lab.zmq_service(processes=2)
    connection = lab.connect(service.address, timeout=TIMEOUT, auto_retry=True)
    pids = pids_answering(connection, 2)
    marker = lab.path('parked')
    tally = Tally()

    # The first call parks one worker process; the router keeps handing it calls.
    connection.invoke('park', park_parameters(0, marker, park='once'),
                      callback=tally.callback(0))
    parked_pid = int(wait_for_file(marker))
    for n in range(1, CALLS):
        connection.invoke('park', park_parameters(n, marker, park='once'),
                          callback=tally.callback(n))
    os.kill(parked_pid, signal.SIGKILL)
    finished = tally.wait_all(10)

    counts = tally.counts()
    survivor_pid = (pids - set([parked_pid])).pop()
    retried = len([latency for latency in tally.latencies() if latency >= TIMEOUT])
    fault_report('zmq: one of two worker processes behind a router killed, auto_retry',
                 counts, transport='zmq', timeout=TIMEOUT, retried=retried)
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == CALLS, counts
    # The survivor answers, or the process the service started in place of
    # the killed one; never the killed one.
    for n in range(CALLS):
        answer = tally.first(n)
        assert answer['n'] == n and answer['pid'] != parked_pid, answer
    assert survivor_pid in set(tally.first(n)['pid'] for n in range(CALLS))
    assert retried > 0
    assert service.is_running(), 'the service lost its router with one worker process'


@pytest.mark.timeout(30)
def test_http_auto_retry_count_moves_calls_of_a_killed_worker_to_the_survivor(
        lab, fault_report):
    from toto.httpworkerconnection import HTTPWorkerConnection
    http_timeout = 2.0
    doomed = lab.http_service(env={'TOTO_FAULT_PARK': '1'})
    survivor = lab.http_service()
    survivor_pid = survivor.first_answer['pid']
    connection = HTTPWorkerConnection([doomed.address, survivor.address],
                                      timeout=http_timeout, auto_retry_count=1)
    marker = lab.path('parked')
    tally = Tally()

    def send():
        for n in range(CALLS):
            tally.future(n, connection.invoke('park', park_parameters(n, marker, park=False)))
    lab.http(send)
    wait_for_file(marker)
    started = time.time()
    doomed.end(signal.SIGKILL)
    finished = tally.wait_all(2 * http_timeout + 5)

    counts = tally.counts()
    fault_report('http: one of two workers killed (SIGKILL), auto_retry_count=1', counts,
                 transport='http', timeout=http_timeout,
                 after_kill=round(time.time() - started, 3))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == CALLS, (counts, tally.of('failed'))
    for n in range(CALLS):
        assert tally.first(n) == {'pid': survivor_pid, 'n': n}
    assert len(connection) == 0


@pytest.mark.timeout(60)
def test_zmq_restarted_service_takes_new_calls_at_once_although_calls_were_lost(
        lab, fault_report):
    # The connection's room for this address is full of calls parked in the service;
    # the service is killed and started again.  Those calls are lost with it, so their
    # room is given back when the connection drops: a new call goes through at once
    # instead of waiting for the lost calls to time out.
    parked_timeout, bound = 40.0, 10
    service = lab.zmq_service(processes=1)
    connection = lab.connect(service.address, timeout=parked_timeout)
    connection.max_in_flight = bound
    marker = lab.path('parked')
    parked = Tally()
    loop = LoopThread()
    try:
        # Calls made on a loop whose link is up are on the wire when invoke() returns.
        # Made from a plain thread, the last ones could still wait for the I/O thread
        # when the service is killed, and go to the new service instead: a parked call
        # there would hold its only worker for good.
        warm_up = loop.run(lambda: connection.invoke('echo', {'n': 'warm-up'}, await_=True))
        assert warm_up == {'n': 'warm-up'}
        loop.run(lambda: [connection.invoke('park', park_parameters(n, marker),
                                            callback=parked.callback(n))
                          for n in range(bound)])
        wait_for_file(marker)

        lab.restart(service)
        started = time.time()
        after = Tally()
        connection.invoke('echo', {'n': 'after'}, callback=after.callback('after'),
                          timeout=10.0)
        assert after.wait_all(25.0), after.counts()
        waited = time.time() - started
    finally:
        loop.stop()

    fault_report('zmq: service restarted with the connection\'s room full of parked calls',
                 after, transport='zmq', max_in_flight=bound, waited=round(waited, 2))
    assert after.first('after') == {'n': 'after'}, 'the new call waited behind lost ones'
    assert parked.completed == 0, 'the parked calls wait for their own timeout'
