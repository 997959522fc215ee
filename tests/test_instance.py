"""worker_* options and WorkerConnection.instance() (SPEC 2).

Options are set the way an application sets them: ``tornado.options.parse_command_line``.
The ``worker_options`` fixture restores them and forgets the shared instances afterwards.
"""

import io
import json
import zlib

import pytest
from tornado.options import parse_command_line

from httpworker import HTTPTestWorker
from support import Recorder
from zmqworker import ZMQTestWorker


def command_line(*arguments):
    parse_command_line(['toto-test-service'] + list(arguments))


def test_worker_options_are_defined_with_their_defaults(worker_options):
    import toto.workerconnection  # noqa: F401 - importing defines the options
    assert worker_options.worker_address == ''
    assert worker_options.worker_transport == 'zmq'
    assert worker_options.worker_timeout == 10.0
    assert worker_options.worker_auto_retry is False
    assert worker_options.worker_retry_count == 0
    assert not worker_options.worker_compression_module
    assert not worker_options.worker_serialization_module
    assert worker_options.worker_serialization_mime == 'application/pickle'


def test_help_lists_the_worker_options(worker_options):
    import toto.workerconnection  # noqa: F401
    out = io.StringIO() if str is not bytes else io.BytesIO()
    worker_options.print_help(out)
    text = out.getvalue()
    for name in ('worker_address', 'worker_transport', 'worker_timeout', 'worker_auto_retry',
                 'worker_retry_count', 'worker_compression_module',
                 'worker_serialization_module', 'worker_serialization_mime'):
        # Tornado 6 prints --worker-address, Tornado 5.1 --worker_address
        assert '--' + name in text or '--' + name.replace('_', '-') in text


def test_command_line_worker_address_reaches_the_zmq_instance(worker_options, zmq_worker):
    from toto.workerconnection import WorkerConnection
    from toto.zmqworkerconnection import ZMQWorkerConnection
    command_line('--worker_address=' + zmq_worker.address, '--worker_timeout=3.5')
    conn = WorkerConnection.instance()
    assert isinstance(conn, ZMQWorkerConnection)
    assert conn is WorkerConnection.instance()
    assert conn is ZMQWorkerConnection.instance()
    assert conn.active_connections == set([zmq_worker.address])
    recorder = Recorder()
    conn.invoke('whoami', {}, callback=recorder)
    assert recorder.wait() == zmq_worker.worker_id


def test_command_line_http_transport_gives_the_http_instance(worker_options, http_worker,
                                                             io_loop):
    from toto.httpworkerconnection import HTTPWorkerConnection
    from toto.workerconnection import WorkerConnection
    command_line('--worker_transport=http', '--worker_address=' + http_worker.address,
                 '--worker_serialization_mime=application/x-from-options')
    conn = WorkerConnection.instance()
    assert isinstance(conn, HTTPWorkerConnection)
    assert conn is HTTPWorkerConnection.instance()
    assert io_loop.run_sync(lambda: conn.invoke('whoami'), timeout=10) == http_worker.worker_id
    assert http_worker.calls[0]['content_type'] == 'application/x-from-options'


def test_command_line_several_addresses_are_all_connected(worker_options, zmq_workers):
    from toto.workerconnection import WorkerConnection
    command_line('--worker_address=' + ','.join(worker.address for worker in zmq_workers))
    conn = WorkerConnection.instance()
    assert conn.active_connections == set(worker.address for worker in zmq_workers)


def test_command_line_compression_and_serialization_modules(worker_options):
    from toto.workerconnection import WorkerConnection
    with ZMQTestWorker(compression=zlib, serialization=json) as worker:
        command_line('--worker_address=' + worker.address,
                     '--worker_compression_module=zlib', '--worker_serialization_module=json')
        conn = WorkerConnection.instance()
        recorder = Recorder()
        conn.invoke('echo', {'via': 'options'}, callback=recorder)
        assert recorder.wait() == {'via': 'options'}


def test_command_line_compression_and_serialization_modules_over_http(worker_options,
                                                                      io_loop):
    from toto.workerconnection import WorkerConnection
    with HTTPTestWorker(compression=zlib, serialization=json) as worker:
        command_line('--worker_transport=http', '--worker_address=' + worker.address,
                     '--worker_compression_module=zlib', '--worker_serialization_module=json')
        conn = WorkerConnection.instance()
        result = io_loop.run_sync(lambda: conn.invoke('echo', {'via': 'options'}), timeout=10)
        assert result == {'via': 'options'}


def test_command_line_timeout_and_auto_retry_reach_the_zmq_instance(worker_options,
                                                                    zmq_worker):
    from toto.workerconnection import WorkerConnection
    command_line('--worker_address=' + zmq_worker.address, '--worker_timeout=0.2',
                 '--worker_auto_retry=true')
    conn = WorkerConnection.instance()
    recorder = Recorder()
    conn.invoke('slow_once', {'seconds': 3.0}, callback=recorder)
    assert recorder.wait()['attempt'] >= 2


def test_command_line_timeout_without_retry_times_out(worker_options, zmq_worker):
    from toto.workerconnection import WorkerConnection
    command_line('--worker_address=' + zmq_worker.address, '--worker_timeout=0.2')
    conn = WorkerConnection.instance()
    recorder = Recorder()
    conn.invoke('sleep', {'seconds': 3.0}, callback=recorder)
    assert recorder.wait() == {'error': 'timeout'}


def test_command_line_retry_count_reaches_the_http_instance(worker_options, http_workers,
                                                            io_loop):
    from toto.workerconnection import WorkerConnection
    # The first attempt fails by a connection reset, not by a deadline, so the retry
    # need not beat a short timeout on a loaded machine.
    command_line('--worker_transport=http', '--worker_timeout=5', '--worker_retry_count=1',
                 '--worker_address=%s,%s' % (http_workers[0].address, http_workers[1].address))
    conn = WorkerConnection.instance()
    result = io_loop.run_sync(lambda: conn.invoke('hangup_once', {'key': 'opt'}), timeout=10)
    assert result['attempt'] == 2


def test_unknown_transport_is_a_clear_error(worker_options, zmq_worker):
    from toto.workerconnection import WorkerConnection
    command_line('--worker_transport=carrier-pigeon', '--worker_address=' + zmq_worker.address)
    with pytest.raises(Exception) as caught:
        WorkerConnection.instance()
    assert 'carrier-pigeon' in str(caught.value)


def test_zero_worker_timeout_is_refused(worker_options, zmq_worker):
    from toto.workerconnection import WorkerConnection
    command_line('--worker_address=' + zmq_worker.address, '--worker_timeout=0')
    with pytest.raises(ValueError):
        WorkerConnection.instance()


def test_each_connection_class_has_its_own_shared_instance(worker_options, zmq_worker,
                                                           http_worker):
    from toto.httpworkerconnection import HTTPWorkerConnection
    from toto.zmqworkerconnection import ZMQWorkerConnection
    worker_options.worker_address = zmq_worker.address
    zmq_instance = ZMQWorkerConnection.instance()
    worker_options.worker_address = http_worker.address
    http_instance = HTTPWorkerConnection.instance()
    assert isinstance(zmq_instance, ZMQWorkerConnection)
    assert isinstance(http_instance, HTTPWorkerConnection)
    assert ZMQWorkerConnection.instance() is zmq_instance
    assert HTTPWorkerConnection.instance() is http_instance
    assert zmq_instance.active_connections == set([zmq_worker.address])
    assert http_instance.active_connections == set([http_worker.address])


def test_forgetting_shared_instances_sends_no_worker_call(worker_options, http_worker,
                                                          io_loop):
    # _clear_instances() is how tests and reloads drop the shared connections; it must
    # close them, not call a worker method named "close" through attribute-style access.
    import toto.workerconnection as workerconnection
    from toto.httpworkerconnection import HTTPWorkerConnection
    from toto.workerconnection import WorkerConnection
    command_line('--worker_transport=http', '--worker_address=' + http_worker.address)

    def forget_then_call():
        WorkerConnection.instance()
        workerconnection._clear_instances()
        # the probe goes out after anything the clearing sent, to the same server
        return HTTPWorkerConnection(http_worker.address).invoke('echo', {'probe': 1})

    assert io_loop.run_sync(forget_then_call, timeout=10) == {'probe': 1}
    assert [call['method'] for call in http_worker.calls] == ['echo']
