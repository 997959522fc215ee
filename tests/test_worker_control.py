"""``--command=shutdown|status``: control commands published to running worker processes.

The command is the same program run again with ``--command=...`` and the service's
``--control_socket_address`` (SPEC 6).
"""

import os
import re
import signal
import subprocess
import sys

import pytest
from support import wait_until
from workerproc import (ServiceGroup, call, child_env, group_running, pids_answering,
                        running)


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
                re.findall(r'worker pid (\d+): \d+ calls answered', service.output())}
    wait_until(lambda: reported() == set(pids), 10,
               message='status not logged by both workers\n' + service.describe())
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
               message='worker processes outlived the service: %r' % sorted(pids))
    wait_until(lambda: not group_running(service.pid), 10,
               message='a process of the service (its router?) outlived it')


@pytest.mark.timeout(40)
def test_interrupting_the_service_like_ctrl_c_ends_all_its_processes(services):
    service = services.start(processes=2)
    pids = pids_answering(services.connect(service.address), 2, logs=services.logs)

    os.killpg(service.pid, signal.SIGINT)   # what a terminal sends to the foreground group

    service.wait_exit()
    wait_until(lambda: not [pid for pid in pids if running(pid)], 10,
               message='worker processes outlived the service: %r' % sorted(pids))
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
        10, message=service.describe())
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
    assert 'toto-router process (pid %s) exited: the service is stopping' % router.group(
        1) in log
