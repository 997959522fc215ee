"""ZMQWorkerConnection: call styles, results, error answers and bad input (SPEC 3, 4)."""

import json
import pickle
import sys
import threading
import zlib

import pytest
import six
import zmq
from tornado import gen

from support import Recorder
from zmqworker import ZMQTestWorker

PY2 = sys.version_info[0] == 2
# What pickle itself raises for a lambda differs between Pythons; a lock is a TypeError.
UNPICKLABLE_ERRORS = (TypeError, pickle.PicklingError, AttributeError)


def test_callback_receives_the_method_result(zmq_conn):
    recorder = Recorder()
    zmq_conn.invoke('echo', {'a': 1, 'b': [1, 2]}, callback=recorder)
    assert recorder.wait() == {'a': 1, 'b': [1, 2]}


def test_attribute_style_call_sends_the_dotted_method_name(zmq_worker, zmq_conn):
    recorder = Recorder()
    zmq_conn.test.echo({'a': 1}, callback=recorder)
    assert recorder.wait() == {'a': 1}
    assert [call['method'] for call in zmq_worker.calls] == ['test.echo']


def test_deeper_attribute_paths_join_with_dots(zmq_worker, zmq_conn):
    recorder = Recorder()
    zmq_conn.a.b.c.whoami(callback=recorder)
    assert recorder.wait() == zmq_worker.worker_id
    assert zmq_worker.calls[0]['method'] == 'a.b.c.whoami'


def test_default_parameters_are_an_empty_dict(zmq_worker, zmq_conn):
    recorder = Recorder()
    zmq_conn.invoke('echo', callback=recorder)
    assert recorder.wait() == {}


def test_call_without_callback_still_reaches_the_worker(zmq_worker, zmq_conn):
    zmq_conn.invoke('echo', {'fire': 'and forget'})
    zmq_worker.wait_for(lambda worker: worker.replies)
    assert zmq_worker.calls[0]['parameters'] == {'fire': 'and forget'}


def test_await_keyword_returns_a_future_for_gen_coroutines(zmq_conn, io_loop):
    ignored = Recorder()

    @gen.coroutine
    def call():
        result = yield zmq_conn.invoke('echo', {'x': 1}, callback=ignored, **{'await': True})
        raise gen.Return(result)

    assert io_loop.run_sync(call, timeout=5) == {'x': 1}
    assert ignored.count == 0, 'the callback must be ignored when await=True'


def test_attribute_style_with_await_keyword(zmq_conn, io_loop):
    @gen.coroutine
    def call():
        result = yield zmq_conn.test.echo({'y': 2}, **{'await': True})
        raise gen.Return(result)

    assert io_loop.run_sync(call, timeout=5) == {'y': 2}


def test_await_underscore_keyword_returns_a_future(zmq_conn, io_loop):
    @gen.coroutine
    def call():
        result = yield zmq_conn.invoke('echo', {'z': 3}, await_=True)
        raise gen.Return(result)

    assert io_loop.run_sync(call, timeout=5) == {'z': 3}


@pytest.mark.skipif(not PY2, reason='await=True is a SyntaxError from Python 3.7 on')
def test_await_literal_keyword_on_python2(zmq_conn, io_loop):
    namespace = {'conn': zmq_conn}
    source = ("future = conn.invoke('echo', {'w': 4}, await=True)\n"
              "attribute_future = conn.test.echo({'v': 5}, await=True)\n")

    @gen.coroutine
    def call():
        exec(compile(source, '<python 2 caller>', 'exec'), namespace)
        first = yield namespace['future']
        second = yield namespace['attribute_future']
        raise gen.Return((first, second))

    assert io_loop.run_sync(call, timeout=5) == ({'w': 4}, {'v': 5})


def test_failing_method_error_comes_back_as_a_result(zmq_conn):
    recorder = Recorder()
    zmq_conn.invoke('fail', {}, callback=recorder)
    assert recorder.wait() == {'error': {'code': 4242, 'value': 'x'}}


def test_unknown_method_error_comes_back_as_a_result(zmq_conn, io_loop):
    @gen.coroutine
    def call():
        result = yield zmq_conn.invoke('nosuch.method', {}, **{'await': True})
        raise gen.Return(result)

    result = io_loop.run_sync(call, timeout=5)
    assert result['error']['code'] == 1000
    assert 'method' in result['error']['value']


def test_acknowledgement_without_payload_yields_none(zmq_worker, zmq_conn, io_loop):
    recorder = Recorder()
    zmq_conn.invoke('jobs.ack', {'job': 1}, callback=recorder)
    assert recorder.wait() is None

    @gen.coroutine
    def call():
        result = yield zmq_conn.invoke('jobs.ack', {'job': 2}, **{'await': True})
        raise gen.Return(result)

    assert io_loop.run_sync(call, timeout=5) is None
    assert len(zmq_worker.calls_of('ack')) == 2


def test_undecodable_answer_gives_error_and_the_next_call_still_works(zmq_conn):
    broken = Recorder()
    zmq_conn.invoke('garbage', {}, callback=broken)
    result = broken.wait()
    assert isinstance(result, dict) and list(result) == ['error']
    assert isinstance(result['error'], Exception)

    after = Recorder()
    zmq_conn.invoke('echo', {'still': 'working'}, callback=after)
    assert after.wait() == {'still': 'working'}
    assert broken.count == 1
    assert len(zmq_conn) == 0


@pytest.mark.parametrize('compression, serialization', [
    (zlib, None),
    (None, json),
    (zlib, json),
], ids=['zlib', 'json', 'zlib+json'])
def test_compression_and_serialization_match_the_worker(make_zmq_conn, compression,
                                                        serialization):
    with ZMQTestWorker(compression=compression, serialization=serialization) as worker:
        conn = make_zmq_conn(worker.address, compression=compression,
                             serialization=serialization)
        echo = Recorder()
        conn.invoke('echo', {'text': u'caf\xe9', 'list': [1, 2.5, None]}, callback=echo)
        fail = Recorder()
        conn.invoke('fail', {}, callback=fail)
        assert echo.wait() == {'text': u'caf\xe9', 'list': [1, 2.5, None]}
        assert fail.wait() == {'error': {'code': 4242, 'value': 'x'}}
        assert worker.calls_of('echo')[0]['parameters']['text'] == u'caf\xe9'


def test_python2_pickled_answer_decodes_utf8_strings_as_text(zmq_conn):
    recorder = Recorder()
    zmq_conn.invoke('py2pickle', {}, callback=recorder)
    result = recorder.wait()
    assert 'error' not in result, result
    assert result['num'] == 1
    if PY2:
        assert result['text'] == 'caf\xc3\xa9'
    else:
        assert result['text'] == u'caf\xe9'
        assert result['raw'] in (b'\xff\xfe', u'\xff\xfe')   # kept, not a crash


def test_worker_that_is_a_router_answers_directly(make_zmq_conn):
    with ZMQTestWorker(direct=True) as worker:
        conn = make_zmq_conn(worker.address)
        recorder = Recorder()
        conn.invoke('whoami', {}, callback=recorder)
        assert recorder.wait() == worker.worker_id


def test_address_may_be_a_comma_string_or_an_iterable(zmq_workers, make_zmq_conn):
    addresses = [worker.address for worker in zmq_workers[:2]]
    from_string = make_zmq_conn(' , '.join(addresses))
    from_list = make_zmq_conn(iter(addresses))
    assert from_string.active_connections == set(addresses)
    assert from_list.active_connections == set(addresses)


# -- bad input is refused at the call site --------------------------------------------------

@pytest.mark.parametrize('parameters', [
    {'lock': threading.Lock()},
    {'function': lambda: None},
], ids=['lock', 'lambda'])
def test_unpicklable_parameters_raise_at_the_call_site(zmq_worker, zmq_conn, parameters):
    with pytest.raises(UNPICKLABLE_ERRORS):
        zmq_conn.invoke('echo', parameters, callback=Recorder())
    assert len(zmq_conn) == 0
    recorder = Recorder()
    zmq_conn.invoke('echo', {'ok': True}, callback=recorder)
    assert recorder.wait() == {'ok': True}
    assert [call['parameters'] for call in zmq_worker.calls] == [{'ok': True}]


def test_unpicklable_lock_raises_type_error(zmq_conn):
    with pytest.raises(TypeError):
        zmq_conn.invoke('echo', {'lock': threading.Lock()})


def test_parameters_json_cannot_encode_raise_at_the_call_site(make_zmq_conn):
    with ZMQTestWorker(serialization=json) as worker:
        conn = make_zmq_conn(worker.address, serialization=json)
        with pytest.raises(TypeError):
            conn.invoke('echo', {'not json': object()})
        assert len(conn) == 0


def test_timeout_zero_is_a_value_error(zmq_worker, zmq_conn):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    with pytest.raises(ValueError):
        ZMQWorkerConnection(zmq_worker.address, timeout=0)
    # On invoke, timeout=0 means "the connection's default" (SPEC 3); 0.0 the same.
    recorder = Recorder()
    zmq_conn.invoke('echo', {'t': 0}, timeout=0, callback=recorder)
    assert recorder.wait() == {'t': 0}


@pytest.mark.parametrize('method', [None, 42, b'echo' if not PY2 else bytearray(b'echo')])
def test_method_name_that_is_not_a_string_is_refused(zmq_worker, zmq_conn, method):
    with pytest.raises((TypeError, ValueError)):
        zmq_conn.invoke(method, {}, callback=Recorder())
    assert len(zmq_conn) == 0
    assert zmq_worker.calls == []


def test_unknown_keyword_is_a_type_error(zmq_conn):
    with pytest.raises(TypeError):
        zmq_conn.invoke('echo', {}, callbak=Recorder())
    with pytest.raises(TypeError):
        zmq_conn.test.echo({}, no_such_option=True)
    assert len(zmq_conn) == 0


@pytest.mark.parametrize('address', ['not an address', 'bogus://127.0.0.1:1', 'tcp://'])
def test_address_zeromq_cannot_parse_is_refused(zmq_conn, make_zmq_conn, address):
    with pytest.raises((ValueError, zmq.ZMQError)):
        make_zmq_conn(address)
    with pytest.raises((ValueError, zmq.ZMQError)):
        zmq_conn.add_connection(address)
    assert address not in zmq_conn.active_connections
    recorder = Recorder()
    zmq_conn.invoke('echo', {'after': address}, callback=recorder)
    assert recorder.wait() == {'after': address}


def test_exception_in_a_callback_does_not_break_the_connection(zmq_conn):
    def explode(result):
        raise RuntimeError('callback failure for the test')

    zmq_conn.invoke('echo', {}, callback=explode)
    recorder = Recorder()
    zmq_conn.invoke('echo', {'next': 1}, callback=recorder)
    assert recorder.wait() == {'next': 1}


def test_text_and_bytes_parameters_survive_the_round_trip(zmq_conn):
    recorder = Recorder()
    parameters = {u'text': u'\u2603 snow', 'number': 2 ** 40, 'nested': {'t': (1, 2)}}
    zmq_conn.invoke('echo', parameters, callback=recorder)
    result = recorder.wait()
    assert result[u'text'] == u'\u2603 snow'
    assert result['number'] == 2 ** 40
    assert result['nested'] == {'t': (1, 2)}
    assert isinstance(result[u'text'], six.text_type)
