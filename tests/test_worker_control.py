"""``--command=shutdown|status``: control commands published to running worker processes.

The command is the same program run again with ``--command=...`` and the service's
``--control_socket_address`` (SPEC 6).
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from support import wait_until
from workerproc import (TESTS_DIR, ServiceGroup, call, child_env, group_running,
                        pids_answering, running)


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


@pytest.mark.timeout(40)
def test_shutdown_command_makes_the_service_exit(services):
    service = services.start(processes=2)
    pids_answering(services.connect(service.address), 2, logs=services.logs)

    result = services.command(['--command=shutdown',
                               '--control_socket_address=' + service.control_address])

    assert result.returncode == 0, result.output
    assert service.wait_exit() == 0, service.describe()
    assert service.output().count('stopping (a shutdown command)') == 1, service.describe()
    wait_until(lambda: not group_running(service.pid), 10,
               message='a process of the service (its router?) outlived it')


@pytest.mark.timeout(40)
def test_status_command_reports_and_keeps_the_service_running(services):
    service = services.start(processes=2)
    connection = services.connect(service.address)
    pids = pids_answering(connection, 2, logs=services.logs)

    result = services.command(['--command=status',
                               '--control_socket_address=' + service.control_address])

    assert result.returncode == 0, result.output

    def reported():
        return {int(pid) for pid in
                re.findall(r'worker pid (\d+): \w+, \d+ calls answered', service.output())}
    wait_until(lambda: reported() == set(pids), 10,
               message=lambda: 'status not logged by both workers\n' + service.describe())
    assert service.is_running()
    assert call(connection, 'echo', {'after': 'status'}) == {'after': 'status'}


@pytest.mark.timeout(40)
def test_shutdown_reaches_only_the_service_on_that_control_address(services):
    stopped = services.start(processes=1)
    kept = services.start(processes=1)

    result = services.command(['--command=shutdown',
                               '--control_socket_address=' + stopped.control_address])

    assert result.returncode == 0, result.output
    assert stopped.wait_exit() == 0, stopped.describe()
    assert kept.is_running()
    assert call(services.connect(kept.address), 'echo', {'still': 'up'}) == {'still': 'up'}


@pytest.mark.timeout(40)
def test_control_command_reports_how_many_worker_processes_it_reached(services):
    service = services.start(processes=3)
    pids_answering(services.connect(service.address), 3, logs=services.logs)

    result = services.command(['--command=status',
                               '--control_socket_address=' + service.control_address])

    assert result.returncode == 0, result.output
    assert "sent 'status' to 3 worker processes" in result.output


@pytest.mark.timeout(40)
def test_terminating_the_service_process_ends_its_worker_processes(services):
    service = services.start(processes=2)
    pids = pids_answering(services.connect(service.address), 2, logs=services.logs)

    service.process.send_signal(signal.SIGTERM)

    assert service.wait_exit() == 0, service.describe()
    wait_until(lambda: not [pid for pid in pids if running(pid)], 10,
               message=lambda: 'worker processes outlived the service: %r' % sorted(pids))
    wait_until(lambda: not group_running(service.pid), 10,
               message='a process of the service (its router?) outlived it')


@contextlib.contextmanager
def children_take_sigint_by_default():
    """Children started within get SIGINT's default action, as from a terminal.

    A suite started in the background (``nohup``, ``&`` in a script, some CI runners)
    ignores SIGINT, and a child inherits an ignored signal through ``exec``; a caught one
    goes back to its default action there, which Python turns into KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.timeout(40)
def test_interrupting_the_service_like_ctrl_c_ends_all_its_processes(services):
    with children_take_sigint_by_default():
        service = services.start(processes=2)
    pids = pids_answering(services.connect(service.address), 2, logs=services.logs)

    os.killpg(service.pid, signal.SIGINT)   # what a terminal sends to the foreground group

    service.wait_exit()
    wait_until(lambda: not [pid for pid in pids if running(pid)], 10,
               message=lambda: 'worker processes outlived the service: %r' % sorted(pids))
    wait_until(lambda: not group_running(service.pid), 10,
               message='a process of the service (its router?) outlived it')


@pytest.mark.timeout(40)
def test_toto_worker_command_with_no_service_says_so_and_fails(services):
    script = os.path.join(os.path.dirname(sys.executable), 'toto-worker')
    if not os.path.isfile(script):
        pytest.skip('toto-worker is not installed beside %s' % sys.executable)
    address = services.ipc('nobody-here-control')
    command = subprocess.Popen([script, '--command=status', '--control_socket_address=' + address],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=child_env(), cwd=services.directory)
    out, err = command.communicate()
    err = err.decode('utf-8', 'replace')

    assert command.returncode == 4, err
    assert err.strip() == 'toto-worker: no worker service answered on %s within 3 s' % address


@pytest.mark.timeout(40)
def test_each_process_start_stop_and_restart_is_one_log_line_with_the_reason(services):
    service = services.start(processes=2)
    connection = services.connect(service.address)
    killed = sorted(pids_answering(connection, 2, logs=services.logs))[0]

    os.kill(killed, signal.SIGKILL)
    restart = wait_until(lambda: re.search(
        r'(TotoWorkerService-\d) process \(pid %d\) was killed by SIGKILL: starting it '
        r'again.*?\1 process started again \(pid (\d+)\)' % killed, service.output(), re.S),
        10, message=service.describe)
    name, new_pid = restart.group(1), int(restart.group(2))
    pids = pids_answering(connection, 2, logs=services.logs)
    assert new_pid in pids and killed not in pids
    result = services.command(['--command=shutdown',
                               '--control_socket_address=' + service.control_address])
    assert result.returncode == 0, result.output
    assert service.wait_exit() == 0, service.describe()

    log = service.output()
    for pid in pids:
        assert len(re.findall(r'TotoWorkerService-\d process \(pid %d\) exited: the service '
                              r'is stopping' % pid, log)) == 1, log
    assert log.count('%s process started with the service' % name) == 1
    router = re.search(r'toto-router process started \(pid (\d+)\)', log)
    assert router, log
    # A balanced router drains and ends on its own; a queue device is stopped.
    if os.environ.get('TOTO_TEST_DISPATCH', 'balanced') == 'balanced':
        ending = 'exited: the service is stopping'
    else:
        ending = 'stopped with the service'
    assert 'toto-router process (pid %s) %s' % (router.group(1), ending) in log


# -- status, reload and graceful stops (issue 12) ------------------------------------------

def _worker_command(services, args):
    """Run ``toto-worker ARGS`` (this checkout's); return (exit status, stdout, stderr)."""
    argv = [sys.executable, '-c', 'import sys; from toto.cli import worker_main; '
            'sys.exit(worker_main())'] + list(args)
    command = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=child_env(), cwd=services.directory)
    out, err = command.communicate()
    return command.returncode, out.decode('utf-8'), err.decode('utf-8', 'replace')


@pytest.mark.timeout(40)
def test_status_command_prints_every_process_as_a_table_or_json(services):
    service = services.start(processes=2)
    connection = services.connect(service.address)
    pids = pids_answering(connection, 2, logs=services.logs)
    failed = call(connection, 'toto_error', {})
    assert 'error' in failed, failed
    control = '--control_socket_address=' + service.control_address

    status, out, err = _worker_command(services, ['--command=status', control])

    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith('service  pid %d  serving' % service.pid), out
    assert lines[1].startswith('router   pid '), out
    assert 'calls queued 0' in lines[1] and 'clients connected ' in lines[1], out
    assert lines[2].split()[:3] == ['PID', 'STATE', 'ANSWERED'], out
    assert sorted(int(line.split()[0]) for line in lines[3:]) == sorted(pids), out

    status, out, err = _worker_command(services, ['--command=status', '--json', control])

    assert status == 0, err
    document = json.loads(out)
    workers = document['workers']
    assert sorted(worker['pid'] for worker in workers) == sorted(pids)
    assert all(worker['state'] == 'serving' and worker['in_hand'] == 0 for worker in workers)
    assert sum(worker['errors'] for worker in workers) == 1, workers
    assert 'toto_error' in [worker['last_method'] for worker in workers], workers
    answered = sum(worker['answered'] for worker in workers)
    router = document['router']
    assert router['answered'] == answered >= 3, document
    assert router['calls_queued'] == 0 and not router['draining'], router
    # This test's connection is open; readiness probes may have come and gone.
    assert router['clients_connected'] >= 1, router
    assert document['service']['pid'] == service.pid
    assert document['service']['processes'] == 2


def _write_module(directory, name, text):
    with open(os.path.join(directory, name), 'w') as source:
        source.write(text)


VERSION_METHOD = '''
import os

def invoke(worker, parameters):
    return {'version': %d, 'pid': os.getpid()}
'''


@pytest.mark.timeout(60)
def test_reload_runs_the_method_code_on_disk_and_refuses_code_that_does_not_import(
        services, tmp_path, monkeypatch):
    package = tmp_path / 'code' / 'reloaded_methods'
    package.mkdir(parents=True)
    _write_module(str(package), '__init__.py', '')
    _write_module(str(package), 'version.py', VERSION_METHOD % 1)
    for method in ('pid', 'echo'):  # what the readiness probes and the test call
        shutil.copy(os.path.join(TESTS_DIR, 'worker_methods', method + '.py'), str(package))
    monkeypatch.setenv('PYTHONPATH', str(tmp_path / 'code'))
    service = services.start(processes=2, method_module='reloaded_methods')
    connection = services.connect(service.address)
    old_pids = pids_answering(connection, 2, logs=services.logs)
    assert call(connection, 'version')['version'] == 1
    control = '--control_socket_address=' + service.control_address

    # A longer file than before: a byte-compiled copy of the old one cannot pass for it.
    _write_module(str(package), 'version.py', VERSION_METHOD % 2 + '\n# version two\n')
    _write_module(str(package), 'added.py', 'def invoke(worker, parameters):\n'
                                            '    return {"added": True}\n')
    tally = []
    for n in range(200):
        connection.invoke('echo', {'n': n}, callback=tally.append)
    status, out, err = _worker_command(services, ['--command=reload', control])

    assert status == 0, err
    from toto.worker import service_status

    def reloaded():
        document = service_status(service.control_address)
        pids = set(worker['pid'] for worker in document['workers'])
        return document['service']['state'] == 'serving' and len(pids) == 2 and \
            not pids & set(old_pids)
    wait_until(reloaded, 20, interval=0.1, message=service.describe)
    assert call(connection, 'version')['version'] == 2
    assert call(connection, 'added') == {'added': True}
    wait_until(lambda: len(tally) == 200, 10, message='calls lost in the reload')
    assert sorted(result['n'] for result in tally) == list(range(200))

    _write_module(str(package), 'version.py', 'def invoke(worker, parameters)\n')
    status, out, err = _worker_command(services, ['--command=reload', control])

    assert status == 4, (status, out, err)
    assert 'refused' in err and 'SyntaxError' in err, err
    assert call(connection, 'version')['version'] == 2
    assert service.is_running()


@pytest.mark.timeout(40)
def test_reload_skips_a_fifo_named_like_a_method_and_the_service_stays_responsive(
        services, tmp_path, monkeypatch):
    package = tmp_path / 'code' / 'fifo_methods'
    package.mkdir(parents=True)
    _write_module(str(package), '__init__.py', '')
    for method in ('pid', 'echo'):
        shutil.copy(os.path.join(TESTS_DIR, 'worker_methods', method + '.py'), str(package))
    monkeypatch.setenv('PYTHONPATH', str(tmp_path / 'code'))
    service = services.start(processes=1, method_module='fifo_methods',
                             args=['--dispatch=balanced'])
    connection = services.connect(service.address)
    old_pid = pids_answering(connection, 1, logs=services.logs)
    control = '--control_socket_address=' + service.control_address
    # Opening either one for reading waits for a writer that never comes.
    os.mkfifo(str(package / 'x.py'))
    os.symlink(str(package / 'x.py'), str(package / 'y.py'))

    status, out, err = _worker_command(services, ['--command=reload', control])

    # Before: the command found no service answering within 3 s, and the main process
    # hung in open(): no control answers, no restarts, SIGTERM ignored.
    assert status == 0, (status, out, err, service.describe())
    for name in ('x.py', 'y.py'):
        assert 'reload: skipped %s: not a regular file' % (package / name) in \
            service.output(), service.describe()
    wait_until(lambda: 'reload done: 1 worker process replaced' in service.output(), 20,
               interval=0.05, message=service.describe)
    assert pids_answering(connection, 1, logs=services.logs) != old_pid
    status, out, err = _worker_command(services, ['--command=status', control])
    assert status == 0, err
    service.process.send_signal(signal.SIGTERM)
    assert service.wait_exit() == 0, service.describe()


@pytest.mark.timeout(40)
def test_sigterm_answers_the_call_in_hand_before_the_service_exits(services):
    service = services.start(processes=1)
    connection = services.connect(service.address, timeout=30.0)
    pids_answering(connection, 1, logs=services.logs)
    gate = os.path.join(services.directory, 'gate')
    answers = []
    connection.invoke('blocks', {'gate': gate}, callback=answers.append)
    wait_until(lambda: _in_hand(service) == 1, 10, interval=0.05, message=service.describe)

    service.process.send_signal(signal.SIGTERM)
    wait_until(lambda: 'router: draining' in service.output(), 10, message=service.describe)
    assert service.is_running(), 'the service left with a call in hand'
    open(gate, 'w').close()

    assert service.wait_exit() == 0, service.describe()
    wait_until(lambda: answers, 10,
               message=lambda: 'the call in hand was never answered\n' + service.describe())
    assert answers[0]['gate_opened'] is True, answers
    assert 'drained: every call answered' in service.output(), service.describe()


def _in_hand(service):
    from toto.worker import service_status
    document = service_status(service.control_address)
    assert document["router"], (document, service.describe())
    return document["router"]["calls_in_workers"]


@pytest.mark.timeout(40)
def test_a_call_that_outlasts_the_shutdown_timeout_is_stopped_with_the_service(services):
    service = services.start(processes=1, args=['--shutdown_timeout=1'])
    connection = services.connect(service.address, timeout=30.0)
    pids_answering(connection, 1, logs=services.logs)
    connection.invoke('blocks', {'gate': os.path.join(services.directory, 'never')})
    wait_until(lambda: _in_hand(service) == 1, 10, interval=0.05, message=service.describe)

    service.process.send_signal(signal.SIGTERM)

    assert service.wait_exit() == 0, service.describe()
    assert '--shutdown_timeout (1 s) is over' in service.output(), service.describe()
    wait_until(lambda: not group_running(service.pid), 10,
               message='a process of the service outlived it')


@pytest.mark.timeout(40)
def test_reload_is_refused_with_queue_dispatch(services):
    service = services.start(processes=1, args=['--dispatch=queue'])
    pid = pids_answering(services.connect(service.address), 1, logs=services.logs)

    status, out, err = _worker_command(
        services, ['--command=reload', '--control_socket_address=' + service.control_address])

    assert status == 4, (status, out, err)
    assert 'reload needs --dispatch=balanced' in err, err
    assert pids_answering(services.connect(service.address), 1, logs=services.logs) == pid
