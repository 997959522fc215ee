"""Stopping, restarting and reloading worker services while clients call them.

The scenario of issue 12: one client connected to two services sends a steady
1,000 calls a second, without ``auto_retry``, while each service is stopped
gracefully and started again, and each is reloaded (its worker processes
replaced one at a time).  Every call must be answered exactly once.

``TOTO_ROLLING_SECONDS`` sets how long the calls go on (8 s by default, to fit
CI; the measurement in docs/reliability.rst ran 30 s).  ``TOTO_ROLLING_RELOAD=0``
leaves the reloads out, to run the stops against a package without them (the
comparison in docs/reliability.rst).  The counts go to the fault report.

Also: a client whose callbacks are slower than its answers arrive, and a
client that ignores the drain notice, get every answer when the service stops.
"""

import os
import signal
import threading
import time

import pytest
import zmq
from faultkit import Tally, pickled_call
from support import wait_until

RATE = 1000  # calls a second
SECONDS = float(os.environ.get('TOTO_ROLLING_SECONDS', '8'))
RELOAD = os.environ.get('TOTO_ROLLING_RELOAD', '1') != '0'
CALL_TIMEOUT = 10.0
# How long a graceful stop may take here before the test calls it stuck.
STOP_WAIT = 40.0


def stop_gracefully(service):
    """SIGTERM to the service's main process only, as --stop does; wait for the end."""
    os.kill(service.pid, signal.SIGTERM)
    return service.wait_ended(STOP_WAIT, 'after SIGTERM')


def reload_and_wait(service):
    """Reload ``service``; return once every worker process has been replaced."""
    from toto.worker import send_control_command, service_status
    address = service.control_address
    before = set(worker['pid'] for worker in service_status(address)['workers'])
    assert send_control_command('reload', address) == len(before)

    def replaced():
        status = service_status(address)
        pids = set(worker['pid'] for worker in status['workers'])
        return (status['service']['state'] == 'serving' and len(pids) == len(before) and
                not pids & before)
    wait_until(replaced, STOP_WAIT, interval=0.1,
               message=lambda: '%s was not reloaded\n%s' % (service.name, service.describe()))


class SteadySender(object):
    """Calls ``echo`` ``RATE`` times a second from a thread until stopped."""

    def __init__(self, connection, tally, rate=RATE):
        self.connection = connection
        self.rate = rate
        self.tally = tally
        self.sent = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name='steady-sender')
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        started = time.time()
        while not self._stop.is_set():
            due = int((time.time() - started) * self.rate)
            while self.sent < due:
                self.connection.invoke('echo', {'n': self.sent},
                                       callback=self.tally.callback(self.sent))
                self.sent += 1
            # Pacing only: the calls go out in steps of about 10 ms.
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self.thread.join()


@pytest.mark.timeout(SECONDS + 3 * STOP_WAIT + 60)
def test_restarting_and_reloading_two_services_under_steady_calls_loses_none(
        lab, fault_report):
    services = [lab.zmq_service(processes=2), lab.zmq_service(processes=2)]
    addresses = [service.address for service in services]
    connection = lab.connect(addresses, timeout=CALL_TIMEOUT)
    tally = Tally()
    sender = SteadySender(connection, tally)
    began = time.time()
    steps = []
    stopped = []
    try:
        for index in range(2):
            service = services[index]
            time.sleep(max(0, began + SECONDS * (0.2 + 0.4 * index) - time.time()))
            stop_started = time.time()
            status = stop_gracefully(service)
            stopped.append(service)
            steps.append(('stop %d' % index, round(time.time() - stop_started, 2), status))
            port = int(service.address.rsplit(':', 1)[1])
            services[index] = service = lab.zmq_service(processes=2, port=port)
            if not RELOAD:
                continue
            time.sleep(max(0, began + SECONDS * (0.4 + 0.4 * index) - time.time()))
            reload_started = time.time()
            reload_and_wait(service)
            steps.append(('reload %d' % index, round(time.time() - reload_started, 2)))
        time.sleep(max(0, began + SECONDS - time.time()))
    finally:
        sender.stop()
    finished = tally.wait_all(2 * CALL_TIMEOUT + 5)
    counts = tally.counts()
    fault_report('zmq: two services each stopped, started and reloaded under %d calls/s '
                 'for %g s, no retry' % (RATE, SECONDS), counts, transport='zmq',
                 steps=steps, timeout=CALL_TIMEOUT)
    assert finished, (counts, steps)
    tally.assert_exactly_once()
    assert counts['answered'] == counts['sent'] == sender.sent, (counts, steps)
    wrong = [n for n, result in tally.of('answered').items() if result != {'n': n}]
    assert not wrong, wrong[:5]
    assert all(step[2] == 0 for step in steps if step[0].startswith('stop')), steps
    for service in stopped:
        assert 'drained: every call answered' in service.output(), service.describe()


@pytest.mark.timeout(STOP_WAIT + 60)
def test_a_client_with_one_address_waits_out_a_restart_and_loses_no_call(lab, fault_report):
    service = lab.zmq_service(processes=1)
    connection = lab.connect(service.address, timeout=CALL_TIMEOUT)
    tally = Tally()
    sender = SteadySender(connection, tally, rate=200)
    try:
        assert tally.wait_count(100, 10), tally.counts()
        stop_started = time.time()
        assert stop_gracefully(service) == 0
        sent_while_down = sender.sent
        port = int(service.address.rsplit(':', 1)[1])
        lab.zmq_service(processes=1, port=port)
        down = time.time() - stop_started
        # Calls made while no service listened go out once one does.
        assert tally.wait_count(sent_while_down + 100, 10), tally.counts()
    finally:
        sender.stop()
    finished = tally.wait_all(2 * CALL_TIMEOUT + 5)
    counts = tally.counts()
    fault_report('zmq: a one-address client across a graceful restart, 200 calls/s, '
                 'no retry', counts, transport='zmq', down=round(down, 2))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == counts['sent'] == sender.sent, counts


@pytest.mark.timeout(STOP_WAIT + 30)
def test_a_client_that_ignores_the_drain_notice_has_its_calls_answered_before_the_end(lab):
    service = lab.zmq_service(processes=1)
    # A DEALER like the original client's: it never answers the notice.
    dealer = lab.raw_dealer(service.address)
    for number in range(200):
        dealer.send_multipart([b'', b'call-%d' % number, pickled_call('echo', {'i': number})])
    assert dealer.poll(10000, zmq.POLLIN)

    os.kill(service.pid, signal.SIGTERM)
    answers, notices = set(), 0
    while dealer.poll(10000, zmq.POLLIN):
        _, message_id, payload = dealer.recv_multipart()
        if message_id == b'toto:draining':
            notices += 1
        else:
            answers.add(message_id)
        if len(answers) == 200 and notices:
            break

    assert len(answers) == 200 and notices >= 1, (len(answers), notices)
    assert service.wait_ended(STOP_WAIT, 'after SIGTERM') == 0
    assert 'drained: every call answered' in service.output(), service.describe()


@pytest.mark.timeout(STOP_WAIT + 60)
def test_a_client_slower_than_its_answers_loses_none_when_the_service_stops(lab, fault_report):
    # 500 calls (a full window) whose callbacks take 5 ms each: their answers all arrive
    # within a moment, and the client hands them over for 2.5 s. The service is stopped once
    # the first has been handed over. Answers left in libzmq's queue when the stopped
    # service closes the connection would be dropped (ZMQ_IMMEDIATE), so the client takes
    # them off the socket at once and reads the draining notice behind them in time
    # (CI stop 26: a client falling behind under load lost calls in the rolling restart).
    service = lab.zmq_service(processes=1)
    connection = lab.connect(service.address, timeout=CALL_TIMEOUT * 3)
    tally = Tally()
    first_handed_over = threading.Event()

    def slow_callback(number):
        count = tally.callback(number)

        def callback(result):
            first_handed_over.set()
            time.sleep(0.005)  # a caller's slow callback, on the connection's I/O thread
            count(result)
        return callback

    calls = connection.max_in_flight
    for number in range(calls):
        connection.invoke('echo', {'n': number}, callback=slow_callback(number))
    assert first_handed_over.wait(10), tally.counts()
    stop_started = time.time()
    assert stop_gracefully(service) == 0
    stop_seconds = time.time() - stop_started
    finished = tally.wait_all(CALL_TIMEOUT * 3 + 5)
    counts = tally.counts()
    fault_report('zmq: a client whose callbacks take 5 ms, 500 answers due, service stopped',
                 counts, transport='zmq', stop_seconds=round(stop_seconds, 2))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == calls, counts
    wrong = [n for n, result in tally.of('answered').items() if result != {'n': n}]
    assert not wrong, wrong[:5]
