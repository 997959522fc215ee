"""``--autoreload``: the whole server starts again when a source file changes.

The method package lives in the test's directory, so the test can change it.
"""

import os
import time

import pytest
from server_apps.serverproc import ServerGroup, call
from support import free_port, wait_until
from workerproc import read_text, running


@pytest.fixture
def servers(tmp_path):
    with ServerGroup(str(tmp_path)) as group:
        yield group


def write_version(folder, body, mtime=None):
    package = os.path.join(folder, 'reloading')
    if not os.path.isdir(package):
        os.mkdir(package)
        with open(os.path.join(package, '__init__.py'), 'w') as init:
            # Imported by the parent, before the processes start: what they run
            # is what was on disk then, until the server restarts.
            init.write('from reloading import version  # noqa: F401\n')
    path = os.path.join(package, 'version.py')
    try:
        before = os.stat(path).st_mtime
    except OSError:
        before = 0
    with open(path, 'w') as source:
        source.write(body)
    # A modification time in a later whole second than the last version's:
    # Python reuses a cached .pyc whose recorded source time (whole seconds)
    # and size match, and two versions of one size written within a second
    # would have the server that restarted run the old one.
    later = max(time.time(), before) + 2 if mtime is None else mtime
    os.utime(path, (later, later))


def version_is(port, expected):
    try:
        return call(port, 'version', timeout=2) == (200, {'result': expected})
    except Exception:  # restarting: nothing listens for a moment
        return False


def test_a_changed_method_is_served_after_the_server_restarted_itself(servers):
    folder = servers.path('app')
    os.mkdir(folder)
    write_version(folder, 'def invoke(handler, parameters):\n    return "v1"\n')
    port = free_port()
    server = servers.start(['--autoreload', '--method_module=reloading', '--port=%d' % port],
                           processes=2, path=[folder])
    assert version_is(port, 'v1')

    write_version(folder, 'def invoke(handler, parameters):\n    return "v2"\n')

    wait_until(lambda: version_is(port, 'v2'), 15, message=servers.logs)
    assert server.is_running()
    assert 'autoreload' in server.output()


def test_an_edit_of_the_same_size_within_the_same_second_is_served(servers):
    # The source time a cached .pyc records is in whole seconds: the watcher
    # sees the change (it compares exact times), and the restart must not
    # import the old bytecode.
    folder = servers.path('app')
    os.mkdir(folder)
    second = int(time.time()) + 100
    write_version(folder, 'def invoke(handler, parameters):\n    return "v1"\n',
                  mtime=second + 0.1)
    port = free_port()
    server = servers.start(['--autoreload', '--method_module=reloading', '--port=%d' % port],
                           path=[folder])
    assert version_is(port, 'v1')

    write_version(folder, 'def invoke(handler, parameters):\n    return "v2"\n',
                  mtime=second + 0.6)

    wait_until(lambda: version_is(port, 'v2'), 15, message=server.describe)


def test_a_change_that_does_not_compile_leaves_the_server_as_it_was(servers):
    folder = servers.path('app')
    os.mkdir(folder)
    write_version(folder, 'def invoke(handler, parameters):\n    return "v1"\n')
    port = free_port()
    server = servers.start(['--autoreload', '--method_module=reloading', '--port=%d' % port],
                           path=[folder])

    write_version(folder, 'def invoke(handler, parameters):\n    return "v2\n')

    wait_until(lambda: 'does not compile' in server.output(), 10, message=server.describe)
    assert version_is(port, 'v1')
    write_version(folder, 'def invoke(handler, parameters):\n    return "v3"\n')
    wait_until(lambda: version_is(port, 'v3'), 15, message=server.describe)


def test_a_daemon_keeps_its_pid_and_pidfile_through_a_restart(servers):
    folder = servers.path('app')
    os.mkdir(folder)
    write_version(folder, 'def invoke(handler, parameters):\n    return "v1"\n')
    port = free_port()
    log = servers.path('daemon.log')
    args = ['--autoreload', '--method_module=reloading', '--port=%d' % port,
            '--log_file_prefix=' + log]
    code, output = servers.command(args + ['--start'], path=[folder])
    assert code == 0, output
    wait_until(lambda: version_is(port, 'v1'), 15, message=lambda: read_text(log))
    daemon = servers.pidfiles()['server.master.pid']

    write_version(folder, 'def invoke(handler, parameters):\n    return "v2"\n')

    wait_until(lambda: version_is(port, 'v2'), 15, message=lambda: read_text(log))
    assert servers.pidfiles()['server.master.pid'] == daemon
    code, output = servers.command(args + ['--stop'], path=[folder])
    assert code == 0, output
    wait_until(lambda: not running(daemon), 10, message=lambda: read_text(log))
