"""Running a worker service as a daemon: ``--daemon=start``, ``--stop``, ``--restart``.

``--pidfile=DIR/svc.pid`` gives one pidfile per process: ``svc.0.pid`` for the daemon,
then one for each worker process and one for the router (SPEC 6).
"""

import os
import signal
import subprocess
import sys

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
        pids = wait_until(complete, 20, message=lambda: 'pidfiles: %r' % (self.pidfiles(),))
        self.services.remember_daemon(pids.values())
        return pids

    def answering_pid(self):
        connection = self.services.connect(self.address)
        return wait_for_answer(connection)['pid']


def wait_all_ended(pids):
    wait_until(lambda: not [pid for pid in pids if running(pid)], 15,
               message=lambda: 'still running: %r' % [pid for pid in pids if running(pid)])


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


def crash(pids):
    """End ``pids`` as a crash (or ``kill -9``) does: the pidfiles stay behind."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_all_ended(pids)


def give_pid_to(daemon, pidfile, other_pid):
    """Make ``daemon``'s stale ``pidfile`` name ``other_pid``, as if the system had given
    the crashed process's pid to that other program since.

    The pidfile and its hidden start record (if any) keep what they said of the
    crashed process (its start time), with the pid swapped, which is what reuse leaves.
    """
    path = os.path.join(os.path.dirname(daemon.pidfile), pidfile)
    record = os.path.join(os.path.dirname(path), '.%s.started' % pidfile)
    with open(path, 'w') as written:
        written.write(str(other_pid))
    if os.path.exists(record):
        with open(record) as existing:
            crashed_pid, started = existing.read().split()
        with open(record, 'w') as written:
            written.write('%d %s\n' % (other_pid, started))


@pytest.fixture
def bystander():
    """A program of the same user that has nothing to do with the service."""
    process = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    yield process
    process.kill()
    process.wait()


@pytest.mark.timeout(60)
def test_a_stale_pidfile_whose_pid_another_program_took_is_not_signalled(services,
                                                                          bystander):
    daemon = Daemon(services)
    daemon.run('--daemon=start')
    crashed = daemon.wait_started()
    crash(crashed.values())
    give_pid_to(daemon, 'svc.0.pid', bystander.pid)

    result = daemon.run('--stop')

    # Before: --stop sent SIGTERM to the bystander, the program that has the pid now.
    assert bystander.poll() is None, 'the bystander was signalled'
    assert 'svc.0.pid names pid %d, which is no longer a TotoWorkerService process' % (
        bystander.pid) in result.output, result.output
    assert daemon.pidfiles() == {}

    daemon.run('--daemon=start')
    started = daemon.wait_started(replacing=crashed.values())
    crash(started.values())
    give_pid_to(daemon, 'svc.0.pid', bystander.pid)

    result = daemon.run('--daemon=start')

    # Before: "not starting TotoWorkerService: already running".
    assert 'already running' not in result.output, result.output
    assert 'started TotoWorkerService daemon' in result.output, result.output
    new = daemon.wait_started(replacing=started.values())
    assert daemon.answering_pid() in new.values()
    daemon.run('--stop')
    wait_all_ended(new.values())
    assert bystander.poll() is None, 'the bystander was signalled'
