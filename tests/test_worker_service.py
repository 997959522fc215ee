"""TotoWorkerService end to end: real service processes called by ZMQWorkerConnection.

Each test starts ``workerservice.py`` (``TotoWorkerService(...).run()``) as a process
with the methods of ``tests/worker_methods`` and calls it over loopback TCP (SPEC 5, 6).
"""

import json
import os
import sys
import zlib

import pytest
from support import wait_until
from workerproc import ServiceGroup, call, pids_answering, read_text, wait_for_answer

from toto._codec import MessageCodec


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def attribute_error_text(name):
    """What this interpreter says when a module has no attribute ``name``."""
    import worker_methods
    try:
        getattr(worker_methods, name)
    except AttributeError as error:
        return str(error)
    raise AssertionError('worker_methods.%s exists' % name)


@pytest.mark.timeout(30)
def test_three_processes_behind_one_address_all_answer(services):
    service = services.start(processes=3)
    connection = services.connect(service.address)

    answers = pids_answering(connection, 3, logs=services.logs)

    assert len(answers) == 3
    assert service.pid not in answers, 'calls are run by worker processes, not the parent'
    assert sorted(answer['service_id'] for answer in answers.values()) == [0, 1, 2]


@pytest.mark.timeout(30)
def test_one_connection_to_three_services_balances_calls_round_robin(services):
    started = [services.start(processes=1) for _ in range(3)]
    connection = services.connect([service.address for service in started])
    pids = pids_answering(connection, 3, logs=services.logs)

    answers = [call(connection, 'pid')['pid'] for _ in range(9)]

    assert set(answers) == set(pids)
    assert sorted(answers.count(pid) for pid in pids) == [3, 3, 3], answers


@pytest.mark.timeout(30)
def test_asynchronous_method_is_acknowledged_with_none_before_it_runs(services):
    service = services.start()
    connection = services.connect(service.address)
    gate, output = services.path('gate'), services.path('output')

    # The method waits for the gate, which is only opened once the acknowledgement came.
    acknowledgement = call(connection, 'write_later', {'gate': gate, 'output': output})
    assert acknowledgement is None
    assert not os.path.exists(output)
    open(gate, 'w').close()

    wait_until(lambda: os.path.exists(output), 10, message='the method never wrote')
    assert read_text(output).startswith('ran after the gate opened')


@pytest.mark.timeout(30)
def test_asynchronous_acknowledgement_on_the_wire_is_the_message_id_alone(services):
    service = services.start()
    dealer = services.raw_dealer(service.address)
    gate, output = services.path('gate'), services.path('output')
    open(gate, 'w').close()
    request = MessageCodec().dumps({'method': 'write_later',
                                    'parameters': {'gate': gate, 'output': output}})

    dealer.send_multipart([b'', b'async-id', request])

    assert dealer.poll(10000), 'no acknowledgement'
    assert dealer.recv_multipart() == [b'', b'async-id']
    wait_until(lambda: os.path.exists(output), 10, message='the method never wrote')


@pytest.mark.timeout(30)
def test_coroutine_method_is_awaited_and_answers_with_its_result(services):
    service = services.start()
    connection = services.connect(service.address)

    answer = call(connection, 'waits', {'seconds': 0.05, 'n': 1})

    assert answer['waited'] == 0.05 and answer['n'] == 1
    assert answer['pid'] != service.pid


@pytest.mark.timeout(30)
def test_coroutine_method_failing_after_a_wait_answers_an_error_result(services):
    service = services.start()
    connection = services.connect(service.address)

    assert call(connection, 'waits', {'fail': 'late failure'}) == \
        {'error': {'code': 4343, 'value': 'late failure'}}
    assert call(connection, 'waits', {'n': 2})['n'] == 2, 'the worker carries on'


@pytest.mark.skipif(sys.version_info < (3, 5), reason='async def needs Python 3.5')
@pytest.mark.timeout(30)
def test_async_def_method_is_awaited(services):
    service = services.start()
    connection = services.connect(service.address)

    assert call(connection, 'waits_native', {'seconds': 0.02, 'n': 3}) == \
        {'waited': 0.02, 'n': 3}


@pytest.mark.skipif(sys.version_info < (3,), reason="Tornado 5.1's Future cannot be cancelled")
@pytest.mark.timeout(30)
def test_method_whose_future_is_cancelled_answers_an_error_and_the_worker_carries_on(
        services):
    service = services.start()
    connection = services.connect(service.address)

    assert call(connection, 'cancelled')['error']['code'] == 1000
    assert call(connection, 'waits', {'n': 5})['n'] == 5


@pytest.mark.timeout(30)
def test_calls_behind_a_coroutine_method_each_get_their_own_answer(services):
    service = services.start()
    connection = services.connect(service.address)
    wait_for_answer(connection, logs=services.logs)

    futures = [connection.invoke('waits', {'seconds': 0.02, 'n': n}, await_=True)
               for n in range(20)]

    answers = [future.result(10) for future in futures]
    assert [answer.get('n') for answer in answers] == list(range(20)), \
        [answer for answer in answers if answer.get('n') is None]


@pytest.mark.timeout(30)
def test_asynchronous_coroutine_method_is_acknowledged_then_runs_to_the_end(services):
    service = services.start()
    connection = services.connect(service.address)
    output = services.path('output')

    assert call(connection, 'write_later_coroutine', {'fail': True}) is None
    assert call(connection, 'write_later_coroutine', {'output': output}) is None

    wait_until(lambda: os.path.exists(output), 10, message='the coroutine never wrote')
    assert read_text(output).startswith('written by a coroutine')
    assert call(connection, 'waits', {'n': 4})['n'] == 4
    wait_until(lambda: 'failed after the acknowledgement' in services.logs(), 10,
               message='the failure after the acknowledgement was not logged')


@pytest.mark.timeout(30)
def test_failing_methods_answer_error_results(services):
    service = services.start()
    connection = services.connect(service.address)

    assert call(connection, 'toto_error', {'code': 4242, 'value': 'x'}) == \
        {'error': {'code': 4242, 'value': 'x'}}
    assert call(connection, 'plain_error', {'why': 'testing'}) == \
        {'error': {'code': 1000, 'value': 'plain failure: testing'}}


@pytest.mark.timeout(30)
def test_result_the_serializer_cannot_encode_answers_an_error(services):
    service = services.start()
    connection = services.connect(service.address)

    answer = call(connection, 'unencodable')

    assert answer['error']['code'] == 1000 and answer['error']['value']
    assert call(connection, 'echo', {'next': 1}) == {'next': 1}


@pytest.mark.timeout(30)
def test_failure_with_a_non_ascii_message_answers_an_error_and_the_worker_goes_on(services):
    service = services.start()
    connection = services.connect(service.address)

    answer = call(connection, 'plain_error', {'why': u'h\xe9llo \u2603'})

    assert answer['error']['code'] == 1000
    if sys.version_info[0] >= 3:
        assert answer['error']['value'] == u'plain failure: h\xe9llo \u2603'
    assert call(connection, 'echo', {'next': 1}) == {'next': 1}


@pytest.mark.timeout(30)
def test_many_concurrent_calls_are_each_answered_once_by_the_worker_processes(services):
    service = services.start(processes=3)
    connection = services.connect(service.address)
    pids_answering(connection, 3, logs=services.logs)

    futures = [connection.invoke('echo', {'index': index}, **{'await': True})
               for index in range(300)]

    assert [future.result(20) for future in futures] == \
        [{'index': index} for index in range(300)]
    assert len(connection) == 0


@pytest.mark.timeout(30)
def test_unknown_method_answers_the_interpreters_attribute_error(services):
    service = services.start()
    connection = services.connect(service.address)

    answer = call(connection, 'bad_method')

    assert answer == {'error': {'code': 1000, 'value': attribute_error_text('bad_method')}}
    if sys.version_info[0] == 2:
        assert answer['error']['value'] == "'module' object has no attribute 'bad_method'"
    else:
        assert answer['error']['value'] == \
            "module 'worker_methods' has no attribute 'bad_method'"
    missing_leaf = call(connection, 'nested.deeper.nope')
    assert missing_leaf['error']['code'] == 1000
    assert 'nope' in missing_leaf['error']['value']


@pytest.mark.timeout(30)
def test_nested_method_module_is_imported_on_first_call(services):
    service = services.start()
    connection = services.connect(service.address)
    module = 'worker_methods.nested.deeper.method'

    assert call(connection, 'loaded', {'module': module}) is False
    assert call(connection, 'nested.deeper.method', {'n': 1}) == \
        {'module': module, 'parameters': {'n': 1}}
    assert call(connection, 'loaded', {'module': module}) is True


@pytest.mark.timeout(30)
def test_worker_process_survives_failing_methods(services):
    service = services.start()
    connection = services.connect(service.address)
    pid = call(connection, 'pid')['pid']

    for _ in range(3):
        assert call(connection, 'plain_error')['error']['code'] == 1000
        assert call(connection, 'toto_error')['error']['code'] == 4242

    assert call(connection, 'echo', {'still': 'here'}) == {'still': 'here'}
    assert call(connection, 'pid')['pid'] == pid, 'the same worker process answers'


@pytest.mark.timeout(30)
def test_undecodable_and_malformed_calls_get_error_answers_and_the_worker_goes_on(services):
    service = services.start()
    connection = services.connect(service.address)
    pid = call(connection, 'pid')['pid']
    dealer = services.raw_dealer(service.address)
    codec = MessageCodec()

    dealer.send_multipart([b'', b'id-1', b'garbage'])
    assert dealer.poll(10000), 'no answer to an undecodable call'
    delimiter, message_id, payload = dealer.recv_multipart()
    assert (delimiter, message_id) == (b'', b'id-1')
    error = codec.loads(payload)['error']
    assert error['code'] == 1000 and error['value']

    dealer.send_multipart([b'', b'id-2', codec.dumps({'method': 'echo'}), b'extra frame'])
    assert dealer.poll(10000), 'no answer to a call with an extra frame'
    frames = dealer.recv_multipart()
    assert frames[:2] == [b'', b'id-2']
    assert codec.loads(frames[2])['error']['code'] == 1000

    dealer.send_multipart([b'', b'id-3', codec.dumps({'method': 'echo'})])
    assert dealer.poll(10000), 'no answer to a call without parameters'
    assert dealer.recv_multipart() == [b'', b'id-3', codec.dumps({})]

    assert call(connection, 'echo', {'next': 'call'}) == {'next': 'call'}
    assert call(connection, 'pid')['pid'] == pid, 'the same worker process answers'


@pytest.mark.timeout(30)
def test_startup_function_runs_in_each_worker_process(services):
    service = services.start(processes=2,
                             args=['--startup_function=worker_methods._startup.remember'])
    connection = services.connect(service.address)

    answers = pids_answering(connection, 2, logs=services.logs)

    for pid, answer in answers.items():
        assert answer['startup_pid'] == pid
        # --database=none by default, as in 1.0.12: the worker's own connection.
        assert answer['startup_db_connection'] == 'FakeConnection'
        assert answer['same_db_connection'] is True


@pytest.mark.timeout(30)
def test_zlib_compression_and_json_serialization_work_with_a_matching_client(services):
    service = services.start(args=['--compression_module=zlib',
                                   '--serialization_module=json'], wait=False)
    connection = services.connect(service.address, compression=zlib, serialization=json)
    wait_for_answer(connection, logs=services.logs)

    assert call(connection, 'echo', {'text': u'h\xe9llo \u2603', 'list': [1, 2.5, None]}) \
        == {'text': u'h\xe9llo \u2603', 'list': [1, 2.5, None]}
    assert call(connection, 'toto_error') == {'error': {'code': 4242, 'value': 'x'}}

    # On the wire: zlib-compressed JSON both ways.
    dealer = services.raw_dealer(service.address)
    request = json.dumps({'method': 'echo', 'parameters': {'raw': True}})
    dealer.send_multipart([b'', b'raw-id', zlib.compress(request.encode('utf-8'))])
    assert dealer.poll(10000), 'no answer to a zlib+json call'
    frames = dealer.recv_multipart()
    assert frames[:2] == [b'', b'raw-id']
    assert json.loads(zlib.decompress(frames[2]).decode('utf-8')) == {'raw': True}


@pytest.mark.timeout(40)
def test_a_killed_worker_process_is_started_again_with_the_same_service_id(services):
    import signal
    service = services.start(processes=1)
    connection = services.connect(service.address)
    first = wait_for_answer(connection, logs=services.logs)

    os.kill(first['pid'], signal.SIGKILL)
    # The replacement answers once the parent noticed (it looks twice a second).
    second = wait_for_answer(connection, logs=services.logs)

    assert second['pid'] != first['pid']
    assert second['service_id'] == first['service_id'] == 0
    assert service.pid not in (first['pid'], second['pid'])
