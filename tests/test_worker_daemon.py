"""Running a worker service as a daemon: ``--daemon=start``, ``--stop``, ``--restart``.

``--pidfile=DIR/svc.pid`` gives one pidfile per process: ``svc.0.pid`` for the daemon,
then one for each worker process and one for the router (SPEC 6).
"""

import os

import pytest
from support import wait_until
from workerproc import ServiceGroup, call, read_pidfiles, running, wait_for_answer

PROCESSES = 2
# The daemon itself, its worker processes and its router.
PIDFILES = ['svc.%d.pid' % index for index in range(PROCESSES + 2)]


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


class Daemon(object):
    """The command lines of one daemonized worker service."""

    def __init__(self, services):
        self.services = services
        self.name = 'daemon'
        self.address = services.tcp()
        self.pidfile = services.path('svc.pid')
        self.args = services.service_args(self.name, PROCESSES, self.address)
        self.args.append('--pidfile=' + self.pidfile)

    def run(self, *command):
        result = self.services.command(self.args + list(command))
        assert result.returncode == 0, result.output
        return result

    def pidfiles(self):
        """``{file name: pid}`` of the pidfiles that exist now."""
        pattern = os.path.join(os.path.dirname(self.pidfile), 'svc*.pid')
        return {os.path.basename(path): pid for path, pid in read_pidfiles(pattern).items()}

    def wait_started(self, replacing=()):
        """Wait for the full set of pidfiles (of new processes); return it."""
        def complete():
            pids = self.pidfiles()
            if sorted(pids) == PIDFILES and not set(pids.values()) & set(replacing):
                return pids
            return None
        pids = wait_until(complete, 20, message='pidfiles: %r' % (self.pidfiles(),))
        self.services.remember_daemon(pids.values())
        return pids

    def answering_pid(self):
        connection = self.services.connect(self.address)
        return wait_for_answer(connection)['pid']


def wait_all_ended(pids):
    wait_until(lambda: not [pid for pid in pids if running(pid)], 15,
               message='still running: %r' % [pid for pid in pids if running(pid)])


@pytest.mark.timeout(60)
def test_daemon_start_writes_a_pidfile_per_process_and_serves_calls(services):
    daemon = Daemon(services)

    result = daemon.run('--daemon=start')

    assert 'started TotoWorkerService daemon' in result.output
    pids = daemon.wait_started()
    assert all(running(pid) for pid in pids.values())
    assert daemon.answering_pid() in pids.values()


@pytest.mark.timeout(60)
def test_starting_a_running_daemon_again_refuses_and_leaves_it_alone(services):
    daemon = Daemon(services)
    daemon.run('--daemon=start')
    pids = daemon.wait_started()
    connection = services.connect(daemon.address)
    wait_for_answer(connection)

    result = daemon.run('--daemon=start')

    assert 'already running' in result.output
    assert daemon.pidfiles() == pids
    assert all(running(pid) for pid in pids.values())
    assert call(connection, 'echo', {'still': 'served'}) == {'still': 'served'}


@pytest.mark.timeout(60)
def test_stop_ends_every_daemon_process_and_removes_the_pidfiles(services):
    daemon = Daemon(services)
    daemon.run('--daemon=start')
    pids = daemon.wait_started()
    daemon.answering_pid()

    daemon.run('--stop')

    wait_all_ended(pids.values())
    assert daemon.pidfiles() == {}


@pytest.mark.timeout(30)
def test_stop_when_not_running_says_so_and_succeeds(services):
    daemon = Daemon(services)

    result = daemon.run('--stop')

    assert 'is not running' in result.output
    assert daemon.pidfiles() == {}


@pytest.mark.timeout(60)
def test_restart_replaces_every_process_with_new_ones(services):
    daemon = Daemon(services)
    daemon.run('--daemon=start')
    old = daemon.wait_started()
    daemon.answering_pid()

    daemon.run('--restart')

    new = daemon.wait_started(replacing=old.values())
    wait_all_ended(old.values())
    assert daemon.answering_pid() in new.values()
