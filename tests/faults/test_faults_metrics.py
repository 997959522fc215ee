"""Attacks on a worker service's metrics (``--metrics_port``), issue 21 items 6 and 10.

Each test starts a real TotoWorkerService with its metrics endpoint on a free loopback
port, and scrapes it over HTTP as Prometheus does.
"""

import socket
import threading
import time

import pytest
from faultkit import Tally
from support import free_port
from six.moves.urllib.request import ProxyHandler, build_opener

REQUEST = b'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'


def scrape(port, timeout=10.0):
    """(the text of /metrics, the seconds it took)."""
    started = time.time()
    response = build_opener(ProxyHandler({})).open('http://127.0.0.1:%d/metrics' % port,
                                                   timeout=timeout)
    try:
        return response.read().decode('utf-8'), time.time() - started
    finally:
        response.close()


def call_counts(text):
    """``{method label: calls}`` of the ``toto_worker_calls_total`` samples."""
    counts = {}
    for line in text.splitlines():
        if line.startswith('toto_worker_calls_total{'):
            labels, value = line[len('toto_worker_calls_total{'):].split('} ')
            method = labels.split('method="', 1)[1].split('"', 1)[0]
            counts[method] = counts.get(method, 0) + float(value)
    return counts


def alias(number, target):
    """A spelling of ``target`` of its own for each ``number``: the aliases module imports
    the method package as ``fault_methods`` and as ``package``; the bits of ``number``
    choose which way each step goes."""
    steps = ['aliases']
    number += 1
    while number:
        steps.append('fault_methods.aliases' if number % 2 else 'package.aliases')
        number //= 2
    return '.'.join(steps) + '.fault_methods.' + target


@pytest.mark.timeout(60)
def test_alias_spellings_of_methods_make_one_series_per_method(lab, fault_report):
    port = free_port()
    service = lab.zmq_service(args=['--metrics_port=%d' % port])
    connection = lab.connect(service.address, timeout=10.0)
    spellings = 300
    tally = Tally()
    for number in range(spellings):
        connection.invoke(alias(number, 'echo'), {'n': number},
                          callback=tally.callback(('echo', number)))
        connection.invoke(alias(number, 'aliases.Tally'), {},
                          callback=tally.callback(('Tally', number)))
    for name in ('aliases', 'aliases.package.aliases', 'aliases.Tally', 'echo'):
        connection.invoke(name, {}, callback=tally.callback(name))
    finished = tally.wait_all(30)
    text, took = scrape(port)
    counts = call_counts(text)
    fault_report('metrics: %d alias spellings each of two methods' % spellings, tally,
                 transport='zmq', label_values=len(counts), scrape_bytes=len(text),
                 scrape_seconds=round(took, 3))

    assert finished, tally.counts()
    tally.assert_exactly_once()
    assert tally.first(('echo', 7)) == {'n': 7}
    assert tally.first(('Tally', 7)) == {'tally': True}
    # Before: one label value (and a series in every worker process, kept for good)
    # per spelling: 20,000 spellings took a worker from 27 to 484 MB.
    assert sorted(counts) == ['aliases', 'aliases.Tally', 'echo', 'pid'], sorted(counts)[:10]
    assert counts['echo'] == spellings + 1
    assert counts['aliases.Tally'] == spellings + 1
    assert counts['aliases'] == 2
    assert len(text) < 20000, len(text)


class Trickler(object):
    """A client sending the start of a request a byte at a time, never finishing it."""

    def __init__(self, port, interval):
        self.connection = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.interval = interval
        self.closed = threading.Event()   # set when the endpoint ended the connection
        # set once a byte has gone unanswered for an interval, or the connection has ended
        self.settled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send)
        self._thread.daemon = True
        self._thread.start()

    def _send(self):
        sent = 0
        try:
            while not self._stop.is_set():
                self.connection.send(REQUEST[sent % (len(REQUEST) - 2):][:1])
                sent += 1
                self.connection.settimeout(self.interval)
                try:
                    if not self.connection.recv(1):
                        break
                except socket.timeout:
                    self.settled.set()
                    continue
        except socket.error:
            pass
        self.closed.set()
        self.settled.set()

    def stop(self):
        self._stop.set()
        # Wakes the thread from its wait for an answer now, not at the end of its interval.
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except socket.error:
            pass
        self._thread.join(10)
        self.connection.close()


@pytest.mark.timeout(60)
def test_slow_clients_do_not_hold_the_metrics_endpoint(lab, fault_report):
    port = free_port()
    service = lab.zmq_service(args=['--metrics_port=%d' % port])
    first = Trickler(port, interval=0.5)
    crowd = []
    times = []
    try:
        assert first.settled.wait(5) and not first.closed.is_set(), \
            'the endpoint closed the slow client at once'
        for _ in range(3):
            text, took = scrape(port)
            times.append(took)
            assert 'toto_worker_calls_total' in text
        # More slow clients than the endpoint serves at once (16): each new one closes
        # the one that has been sending its request the longest, scrapes get through.
        crowd = [Trickler(port, interval=0.5) for _ in range(24)]
        for client in crowd:
            client.settled.wait(5)
        for _ in range(3):
            times.append(scrape(port)[1])
        assert first.closed.wait(5), 'the oldest slow client kept its connection past the cap'
        assert 'Traceback' not in service.output(), service.describe()
    finally:
        for client in [first] + crowd:
            client.stop()
    fault_report('metrics endpoint: 1, then 25 clients trickling requests', {'sent': 6},
                 transport='http', scrape_seconds=[round(took, 3) for took in times])
    # Before: the endpoint served one connection at a time; a byte every 5 s kept the
    # first slow client's connection (and every scrape waiting) for good.
    assert max(times) < 2.0, times
