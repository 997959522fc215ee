"""Answers that come too late, and answers the client cannot decode.

A late answer is dropped and its call completes once (with the timeout); an answer that
cannot be decompressed or deserialized completes its call with ``{'error': ...}`` (zmq)
or fails its Future (http), and the next call on the same connection works.
"""

import logging
import zlib

import pytest
from faultkit import (ErrorCapture, Failure, Tally, pids_answering, wait_for_file,
                      zmq_call)

TIMEOUT = 0.3
DROPPED = 'dropping answer for unknown or completed call'


def dropped_answers(capture):
    return [record for record in capture.records if DROPPED in record.getMessage()]


@pytest.mark.timeout(30)
def test_zmq_late_answer_is_dropped_and_the_call_completes_once(lab, fault_report):
    service = lab.zmq_service(processes=1)
    pid = service.first_answer['pid']
    connection = lab.connect(service.address, timeout=TIMEOUT)
    tally = Tally()

    with ErrorCapture(('toto.zmqworkerconnection',), logging.DEBUG) as log, \
            ErrorCapture() as errors:
        connection.invoke('late', {'seconds': 0.9}, callback=tally.callback('callback'))
        tally.future('future', connection.invoke('late', {'seconds': 0.1},
                                                 **{'await': True}))
        finished = tally.wait_all(2 * TIMEOUT + 5)
        # One worker process answers in order: once this answer is in, so are the late ones.
        assert zmq_call(connection, 'pid', timeout=5.0) == {'pid': pid}

    counts = tally.counts()
    fault_report('zmq: answer after the timeout', counts, transport='zmq', timeout=TIMEOUT,
                 late_answers_dropped=len(dropped_answers(log)))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['timed_out'] == 2, counts
    assert len(dropped_answers(log)) == 2, [r.getMessage() for r in log.records]
    assert not errors.messages()
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_zmq_late_answer_and_a_retried_answer_complete_the_call_once(lab, fault_report):
    service = lab.zmq_service(processes=2)
    connection = lab.connect(service.address, timeout=TIMEOUT, auto_retry=True)
    pids = pids_answering(connection, 2)
    marker, done = lab.path('started'), lab.path('done')
    tally = Tally()

    with ErrorCapture(('toto.zmqworkerconnection',), logging.DEBUG) as log, \
            ErrorCapture() as errors:
        connection.invoke('late_once', {'seconds': 1.0, 'marker': marker, 'done': done},
                          callback=tally.callback('retried'))
        finished = tally.wait_all(10)
        late_pid = int(wait_for_file(done))
        # The late run has returned; a later call answered by the same process comes
        # after its answer on the same path, so the late answer is in once it is.
        for _ in range(20):
            if zmq_call(connection, 'pid', timeout=2.0)['pid'] == late_pid:
                break
        else:
            raise AssertionError('the process of the late run never answered again')

    counts = tally.counts()
    fault_report('zmq: late answer and retried answer (auto_retry)', counts, transport='zmq',
                 timeout=TIMEOUT, late_answers_dropped=len(dropped_answers(log)))
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['answered'] == 1, counts
    assert tally.first('retried')['pid'] in pids
    assert len(dropped_answers(log)) >= 1
    assert not errors.messages()
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_http_late_answer_fails_the_call_once_and_the_next_call_works(lab, fault_report):
    from toto.exceptions import TotoException
    from toto.httpworkerconnection import HTTPWorkerConnection
    service = lab.http_service()
    connection = HTTPWorkerConnection(service.address, timeout=TIMEOUT)
    tally = Tally()

    def late():
        tally.future('future', connection.invoke('late', {'seconds': 0.8},
                                                 callback=tally.callback('callback')))
    lab.http(late)
    finished = tally.wait_all(5)
    # The worker is busy until the late method returns: give this call the time.
    following = lab.http(lambda: connection.invoke('pid', {}, timeout=5.0))

    counts = tally.counts()
    fault_report('http: answer after the timeout', counts, transport='http', timeout=TIMEOUT)
    assert finished, counts
    tally.assert_exactly_once()
    assert counts['timed_out'] == 2, counts
    failure = tally.first('future')
    assert isinstance(failure, Failure) and isinstance(failure.error, TotoException)
    assert (failure.error.code, failure.error.value) == (-1, 'Timeout')
    assert tally.first('callback') == {'error': {'code': -1, 'value': 'Timeout'}}
    assert following == {'pid': service.first_answer['pid']}
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_zmq_undecodable_answers_give_error_results_and_the_next_call_works(
        lab, fault_report):
    service = lab.zmq_service()
    connection = lab.connect(service.address, timeout=2.0)
    zlib_connection = lab.connect(service.address, timeout=2.0, compression=zlib)
    raw = lab.raw_worker('garbage')
    garbage_connection = lab.connect(raw.address, timeout=2.0)
    tally = Tally()

    with ErrorCapture() as errors:
        for n in range(3):
            # An answer whose pickle raises when loaded, then a good one.
            connection.invoke('bad_pickle', {}, callback=tally.callback(('unloadable', n)))
            connection.invoke('park', {'n': n}, callback=tally.callback(('after', n)))
            # A zlib client against a worker without compression: nothing decompresses.
            zlib_connection.invoke('park', {'n': n}, callback=tally.callback(('zlib', n)))
        for n in range(10):
            # Odd calls are answered with garbage bytes, even ones normally.
            garbage_connection.invoke('echo', {'n': n}, callback=tally.callback(('raw', n)))
        finished = tally.wait_all(10)

    counts = tally.counts()
    fault_report('zmq: answers the client cannot decode or decompress', counts,
                 transport='zmq')
    assert finished, counts
    tally.assert_exactly_once()
    for key, result in sorted(tally.results.items()):
        kind, n = key
        result = result[0]
        if kind == 'after' or (kind == 'raw' and n % 2 == 0):
            expected = {'n': n} if kind == 'raw' else {'pid': service.first_answer['pid'],
                                                       'n': n}
            assert result == expected, key
            continue
        assert isinstance(result, dict) and list(result) == ['error'], (key, result)
        assert isinstance(result['error'], Exception), (key, result)
        if kind == 'unloadable':
            assert isinstance(result['error'], ValueError), result
        if kind == 'zlib':
            assert isinstance(result['error'], zlib.error), result
    assert counts['errors'] == 3 + 3 + 5 and counts['answered'] == 3 + 5, counts
    assert not errors.messages()


@pytest.mark.timeout(30)
def test_http_undecodable_answers_fail_the_future_and_the_next_call_works(lab, fault_report):
    from toto.httpworkerconnection import HTTPWorkerConnection
    service = lab.http_service()
    pid = service.first_answer['pid']
    connection = HTTPWorkerConnection(service.address, timeout=2.0)
    zlib_connection = HTTPWorkerConnection(service.address, timeout=2.0, compression=zlib)
    tally = Tally()

    def calls():
        for n in range(3):
            tally.future(('unloadable', n), connection.invoke('bad_pickle', {}))
            tally.future(('zlib', n), zlib_connection.invoke('park', {'n': n}))
            tally.future(('after', n), connection.invoke('park', {'n': n}))
    lab.http(calls)
    finished = tally.wait_all(10)

    counts = tally.counts()
    fault_report('http: answers the client cannot decode or decompress', counts,
                 transport='http')
    assert finished, counts
    tally.assert_exactly_once()
    for n in range(3):
        assert tally.first(('after', n)) == {'pid': pid, 'n': n}
        unloadable, compressed = tally.first(('unloadable', n)), tally.first(('zlib', n))
        assert isinstance(unloadable, Failure) and isinstance(unloadable.error, ValueError)
        assert isinstance(compressed, Failure) and isinstance(compressed.error, zlib.error)
    assert counts['failed'] == 6 and counts['answered'] == 3, counts
