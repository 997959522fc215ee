"""HTTPWorkerConnection against real Tornado HTTP workers on loopback (SPEC 3, 4, 5).

The connection is used on a running IOLoop (``io_loop.run_sync``) as the spec requires.
"""

import collections
import json
import logging
import pickle
import sys
import threading
import time
import zlib

import pytest
from tornado import gen
from tornado.httpclient import HTTPError

from httpworker import HTTPTestWorker
from support import Recorder, free_port

PY2 = sys.version_info[0] == 2
# What pickle itself raises for a lambda differs between Pythons; a lock is a TypeError.
UNPICKLABLE_ERRORS = (TypeError, pickle.PicklingError, AttributeError)
TIMEOUT = 0.2


@pytest.fixture
def make_http_conn():
    from toto.httpworkerconnection import HTTPWorkerConnection

    def make(address, **kwargs):
        kwargs.setdefault('timeout', 5.0)
        return HTTPWorkerConnection(address, **kwargs)

    return make


def run(io_loop, function, timeout=10):
    return io_loop.run_sync(function, timeout=timeout)


def invoke(io_loop, conn, *args, **kwargs):
    """Make one call on the loop and return its result (or raise its failure)."""
    run_timeout = kwargs.pop('run_timeout', 10)
    return run(io_loop, lambda: conn.invoke(*args, **kwargs), timeout=run_timeout)


def failure_of(io_loop, conn, *args, **kwargs):
    with pytest.raises(Exception) as caught:
        invoke(io_loop, conn, *args, **kwargs)
    return caught.value


@pytest.fixture
def retries_logged(caplog):
    """A function giving the client's "retrying call on the next worker" debug lines so far."""
    caplog.set_level(logging.DEBUG, logger='toto.httpworkerconnection')
    return lambda: [record.getMessage() for record in caplog.records
                    if record.name == 'toto.httpworkerconnection'
                    and record.getMessage().startswith('retrying')]


def closed_address():
    return 'http://127.0.0.1:%d/' % free_port()


# -- call styles ------------------------------------------------------------------------

def test_invoke_returns_a_future_with_the_result(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    assert invoke(io_loop, conn, 'echo', {'a': 1, 'b': [1, 2]}) == {'a': 1, 'b': [1, 2]}


def test_gen_coroutine_can_yield_the_future(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)

    @gen.coroutine
    def call():
        first = yield conn.invoke('echo', {'n': 1})
        second = yield conn.invoke('whoami')
        raise gen.Return((first, second))

    assert run(io_loop, call) == ({'n': 1}, http_worker.worker_id)


def test_callback_style_gets_the_result(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    recorder = Recorder()
    result = invoke(io_loop, conn, 'echo', {'cb': True}, callback=recorder)
    assert result == {'cb': True}
    assert recorder.calls == [{'cb': True}]


def test_attribute_style_call_sends_the_dotted_method_name(http_worker, make_http_conn,
                                                           io_loop):
    conn = make_http_conn(http_worker.address)
    recorder = Recorder()

    @gen.coroutine
    def call():
        result = yield conn.test.echo({'attr': 1}, callback=recorder)
        raise gen.Return(result)

    assert run(io_loop, call) == {'attr': 1}
    assert recorder.calls == [{'attr': 1}]
    assert [c['method'] for c in http_worker.calls] == ['test.echo']


def test_await_keywords_are_accepted_and_change_nothing(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)

    @gen.coroutine
    def call():
        first = yield conn.invoke('echo', {'k': 'await'}, **{'await': True})
        second = yield conn.invoke('echo', {'k': 'await_'}, await_=True)
        third = yield conn.test.echo({'k': 'attribute'}, **{'await': True})
        raise gen.Return([first, second, third])

    assert run(io_loop, call) == [{'k': 'await'}, {'k': 'await_'}, {'k': 'attribute'}]


@pytest.mark.skipif(not PY2, reason='await=True is a SyntaxError from Python 3.7 on')
def test_await_literal_keyword_on_python2(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    namespace = {'conn': conn}

    @gen.coroutine
    def call():
        exec(compile("future = conn.invoke('echo', {'py': 2}, await=True)",
                     '<python 2 caller>', 'exec'), namespace)
        result = yield namespace['future']
        raise gen.Return(result)

    assert run(io_loop, call) == {'py': 2}


# -- results and wire format ------------------------------------------------------------

def test_worker_error_bodies_come_back_as_results(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    assert invoke(io_loop, conn, 'fail') == {'error': {'code': 4242, 'value': 'x'}}   # 500
    unknown = invoke(io_loop, conn, 'nosuch.method')                                  # 404
    assert unknown['error']['code'] == 1000
    assert 'method' in unknown['error']['value']


@pytest.mark.parametrize('status', [400, 403, 404, 500, 502, 503])
def test_any_error_status_body_is_decoded_as_the_result(http_worker, make_http_conn,
                                                        io_loop, status):
    conn = make_http_conn(http_worker.address)
    body = {'error': {'code': status, 'value': 'status %d' % status}}
    assert invoke(io_loop, conn, 'status', {'status': status, 'body': body}) == body


def test_request_is_a_post_with_the_mime_type_and_a_protocol_2_pickle(http_worker,
                                                                      make_http_conn,
                                                                      io_loop):
    conn = make_http_conn(http_worker.address, serialization_mime='application/x-toto-test')
    invoke(io_loop, conn, 'accounts.echo', {'id': 7})
    call = http_worker.calls[0]
    assert call['content_type'] == 'application/x-toto-test'
    assert call['body'][:2] == b'\x80\x02'
    assert pickle.loads(call['body']) == {'method': 'accounts.echo', 'parameters': {'id': 7}}


def test_default_mime_type_is_application_pickle(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    invoke(io_loop, conn, 'echo')
    assert http_worker.calls[0]['content_type'] == 'application/pickle'


@pytest.mark.parametrize('compression, serialization', [
    (zlib, None),
    (None, json),
    (zlib, json),
], ids=['zlib', 'json', 'zlib+json'])
def test_compression_and_serialization_match_the_worker(make_http_conn, io_loop,
                                                        compression, serialization):
    with HTTPTestWorker(compression=compression, serialization=serialization) as worker:
        conn = make_http_conn(worker.address, compression=compression,
                              serialization=serialization,
                              serialization_mime='application/json')
        parameters = {'text': u'caf\xe9', 'list': [1, 2.5, None]}
        assert invoke(io_loop, conn, 'echo', parameters) == parameters
        assert invoke(io_loop, conn, 'fail') == {'error': {'code': 4242, 'value': 'x'}}
        assert worker.calls_of('echo')[0]['parameters'] == parameters


# -- transport failures, timeouts, retries ------------------------------------------------

def test_timeout_without_retry_fails_with_toto_exception_timeout(http_worker, make_http_conn,
                                                                 io_loop, retries_logged):
    from toto.exceptions import TotoException
    conn = make_http_conn(http_worker.address, timeout=TIMEOUT)
    started = time.time()
    error = failure_of(io_loop, conn, 'sleep', {'seconds': 3})
    assert isinstance(error, TotoException)
    assert (error.code, error.value) == (-1, 'Timeout')
    assert time.time() - started < 1.5
    # No retry. Whether the worker got the request is not asserted: under load the 0.2 s
    # can run out before it is written (see the test below).
    assert not retries_logged()
    assert len(http_worker.calls_of('sleep')) <= 1


def test_per_call_timeout_overrides_the_connection_default(http_worker, make_http_conn,
                                                           io_loop):
    from toto.exceptions import TotoException
    conn = make_http_conn(http_worker.address, timeout=5.0)
    started = time.time()
    error = failure_of(io_loop, conn, 'sleep', {'seconds': 3}, timeout=TIMEOUT)
    assert isinstance(error, TotoException) and error.value == 'Timeout'
    assert time.time() - started < 1.5


def test_callback_gets_an_error_dict_when_the_call_times_out(http_worker, make_http_conn,
                                                             io_loop):
    from toto.exceptions import TotoException
    conn = make_http_conn(http_worker.address, timeout=TIMEOUT)
    recorder = Recorder()
    error = failure_of(io_loop, conn, 'sleep', {'seconds': 3}, callback=recorder)
    assert isinstance(error, TotoException)
    assert recorder.calls == [{'error': {'code': -1, 'value': 'Timeout'}}]


def test_refused_connection_fails_with_the_transport_exception(make_http_conn, io_loop):
    from toto.exceptions import TotoException
    conn = make_http_conn(closed_address(), timeout=2.0)
    error = failure_of(io_loop, conn, 'echo', {})
    assert not isinstance(error, TotoException), error
    assert isinstance(error, EnvironmentError) or \
        (isinstance(error, HTTPError) and error.code == 599), repr(error)


def test_negative_timeout_never_times_out(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address, timeout=TIMEOUT, auto_retry_count=2)
    result = invoke(io_loop, conn, 'sleep', {'seconds': 0.5}, timeout=-1, run_timeout=3)
    assert result == {'slept': 0.5, 'worker': http_worker.worker_id}
    assert len(http_worker.calls_of('sleep')) == 1


def test_negative_connection_timeout_never_times_out(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address, timeout=-TIMEOUT)
    result = invoke(io_loop, conn, 'sleep', {'seconds': 0.5}, run_timeout=3)
    assert result == {'slept': 0.5, 'worker': http_worker.worker_id}


# The retry tests name the slow worker instead of letting the first worker to see a call
# be it: on a loaded machine an attempt's 0.3 s can run out before its request is written
# (CI run 24), and the worker that saw the call first would then be the retry's.

def test_retry_moves_to_the_next_endpoint_until_one_answers(http_workers, make_http_conn,
                                                            io_loop, retries_logged):
    first, second = http_workers[:2]
    conn = make_http_conn([first.address, second.address], timeout=0.3, auto_retry_count=1)
    # Calls start at the endpoints in turn, the first call at the first; each time the
    # endpoint a call starts at is the slow one, and the other answers.
    for slow, other in ((first, second), (second, first)):
        result = invoke(io_loop, conn, 'slow_on', {'slow': slow.worker_id, 'seconds': 3})
        assert result == {'worker': other.worker_id}
    assert len(retries_logged()) == 2
    assert len(first.calls_of('slow_on')) <= 2 and len(second.calls_of('slow_on')) <= 2


def test_per_call_auto_retry_count_overrides_the_connection_default(http_workers,
                                                                    make_http_conn, io_loop,
                                                                    retries_logged):
    from toto.exceptions import TotoException
    first, second = http_workers[:2]
    conn = make_http_conn([first.address, second.address], timeout=0.3)
    result = invoke(io_loop, conn, 'slow_on', {'slow': first.worker_id, 'seconds': 3},
                    auto_retry_count=1)
    assert result == {'worker': second.worker_id}
    error = failure_of(io_loop, conn, 'sleep', {'seconds': 3})
    assert isinstance(error, TotoException) and error.value == 'Timeout'
    assert len(retries_logged()) == 1  # the first call's, none for the second


def test_retries_exhausted_fail_with_toto_exception_timeout(http_workers, make_http_conn,
                                                            io_loop, retries_logged):
    from toto.exceptions import TotoException
    conn = make_http_conn([worker.address for worker in http_workers[:2]], timeout=TIMEOUT,
                          auto_retry_count=1)
    error = failure_of(io_loop, conn, 'sleep', {'seconds': 3})
    assert isinstance(error, TotoException)
    assert (error.code, error.value) == (-1, 'Timeout')
    # One retry, then the failure. Which workers saw the call is not part of it: on a
    # loaded machine an attempt's 0.2 s can run out before its request is written (CI
    # run 24, py27: no worker had either), but none may have it more than once.
    retries = retries_logged()
    assert len(retries) == 1 and '(attempt 1 of 1)' in retries[0], retries
    assert all(len(worker.calls_of('sleep')) <= 1 for worker in http_workers)
    assert not http_workers[2].calls_of('sleep')


def test_refused_endpoint_is_retried_on_the_next_one(http_worker, make_http_conn, io_loop):
    conn = make_http_conn([closed_address(), http_worker.address], timeout=2.0,
                          auto_retry_count=1)
    for number in range(3):   # the refused endpoint comes first at least once
        assert invoke(io_loop, conn, 'echo', {'n': number}) == {'n': number}
    assert len(http_worker.calls_of('echo')) == 3


def test_reset_connection_without_retry_fails_with_the_transport_exception(http_worker,
                                                                           make_http_conn,
                                                                           io_loop):
    from toto.exceptions import TotoException
    conn = make_http_conn([http_worker.address], timeout=2.0)
    error = failure_of(io_loop, conn, 'hangup', {})
    assert not isinstance(error, TotoException), error
    assert len(http_worker.calls_of('hangup')) == 1


def test_reset_connection_is_retried_on_the_next_endpoint(http_workers, make_http_conn,
                                                          io_loop):
    first, second = http_workers[:2]
    conn = make_http_conn([first.address, second.address], timeout=2.0, auto_retry_count=1)
    for key in ('reset-1', 'reset-2'):
        result = invoke(io_loop, conn, 'hangup_once', {'key': key})
        assert result['attempt'] == 2
        assert result['worker'] != first.registry.first_server[key]


@pytest.mark.parametrize('status', [301, 302, 303, 307, 308])
def test_a_redirect_fails_the_call_and_is_never_followed(http_workers, make_http_conn,
                                                         io_loop, status):
    from toto.exceptions import TotoException
    worker, elsewhere = http_workers[0], http_workers[1]
    conn = make_http_conn(worker.address, auto_retry_count=2)
    failure = failure_of(io_loop, conn, 'redirect',
                         {'status': status, 'location': elsewhere.address + 'echo'})
    assert isinstance(failure, TotoException)
    assert failure.code == -1
    assert 'a redirect' in failure.value and str(status) in failure.value
    assert elsewhere.address in failure.value   # where it pointed, for the log
    assert elsewhere.calls == []                # not re-sent, not fetched
    assert len(worker.calls_of('redirect')) == 1  # and not retried
    assert len(conn) == 0


def test_no_active_connections_fails_with_toto_exception(make_http_conn, io_loop):
    from toto.exceptions import TotoException
    conn = make_http_conn([])
    error = failure_of(io_loop, conn, 'echo', {})
    assert isinstance(error, TotoException)
    assert error.code == -1
    assert 'No active connections' in error.value
    assert len(conn) == 0


# -- connection set ---------------------------------------------------------------------

def whoami_counts(io_loop, conn, count):
    @gen.coroutine
    def calls():
        results = yield [conn.invoke('whoami') for _ in range(count)]
        raise gen.Return(results)

    return collections.Counter(run(io_loop, calls))


def test_calls_are_round_robin_over_the_endpoints(http_workers, make_http_conn, io_loop):
    conn = make_http_conn(','.join(worker.address for worker in http_workers))
    assert whoami_counts(io_loop, conn, 9) == {'http-0': 3, 'http-1': 3, 'http-2': 3}


def test_removed_endpoint_gets_no_more_calls(http_workers, make_http_conn, io_loop):
    conn = make_http_conn([worker.address for worker in http_workers])
    conn.remove_connection(http_workers[2].address)
    assert conn.active_connections == set(worker.address for worker in http_workers[:2])
    assert whoami_counts(io_loop, conn, 6) == {'http-0': 3, 'http-1': 3}
    assert http_workers[2].calls == []
    conn.remove_connection(closed_address())   # not connected: not an error


def test_add_and_set_connections_change_the_endpoints(http_workers, make_http_conn,
                                                      io_loop):
    first, second, third = http_workers
    conn = make_http_conn(first.address)
    conn.add_connection(second.address)
    assert conn.active_connections == set([first.address, second.address])
    assert set(whoami_counts(io_loop, conn, 4)) == set(['http-0', 'http-1'])
    conn.set_connections([second.address, third.address])
    assert conn.active_connections == set([second.address, third.address])
    first_calls = len(first.calls)
    assert whoami_counts(io_loop, conn, 4) == {'http-1': 2, 'http-2': 2}
    assert len(first.calls) == first_calls


def test_len_counts_pending_calls_and_returns_to_zero(http_worker, make_http_conn, io_loop):
    conn = make_http_conn(http_worker.address)
    seen = []

    @gen.coroutine
    def calls():
        futures = [conn.invoke('sleep', {'seconds': 0.1}) for _ in range(3)]
        seen.append(len(conn))
        yield futures
        seen.append(len(conn))

    run(io_loop, calls)
    assert seen == [3, 0]


# -- bad input is refused at the call site --------------------------------------------------

def test_timeout_zero_is_a_value_error(http_worker, make_http_conn, io_loop):
    with pytest.raises(ValueError):
        make_http_conn(http_worker.address, timeout=0)
    conn = make_http_conn(http_worker.address)

    def call():
        return conn.invoke('echo', {}, timeout=0)

    with pytest.raises(ValueError):
        run(io_loop, call)
    assert http_worker.calls == []


def test_unknown_keywords_are_ignored_with_one_warning_as_in_1_0_12(
        http_worker, make_http_conn, io_loop, caplog):
    conn = make_http_conn(http_worker.address)
    with caplog.at_level(logging.WARNING, logger='toto.httpworkerconnection'):
        first = run(io_loop, lambda: conn.invoke('echo', {'n': 1}, unheard_of_option=True))
        second = run(io_loop, lambda: conn.invoke('echo', {'n': 2}, unheard_of_option=False))
    assert (first, second) == ({'n': 1}, {'n': 2})
    warnings = [record for record in caplog.records if 'unheard_of_option' in record.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize('parameters', [
    {'lock': threading.Lock()},
    {'function': lambda: None},
], ids=['lock', 'lambda'])
def test_unpicklable_parameters_raise_at_the_call_site(http_worker, make_http_conn,
                                                       parameters):
    conn = make_http_conn(http_worker.address)
    with pytest.raises(UNPICKLABLE_ERRORS) as caught:
        conn.invoke('echo', parameters)
    if 'lock' in parameters:
        assert isinstance(caught.value, TypeError)
    assert len(conn) == 0
    assert http_worker.calls == []


def test_method_name_that_is_not_a_string_is_refused(http_worker, make_http_conn):
    conn = make_http_conn(http_worker.address)
    with pytest.raises((TypeError, ValueError)):
        conn.invoke(None, {})
    assert len(conn) == 0


@pytest.mark.parametrize('address', ['tcp://127.0.0.1:5555', 'not a url', 'http://'])
def test_address_that_is_not_an_http_url_is_refused(make_http_conn, address):
    with pytest.raises(ValueError):
        make_http_conn(address)
    conn = make_http_conn([])
    with pytest.raises(ValueError):
        conn.add_connection(address)
    assert conn.active_connections == set()
