"""The database servers of tests/dbservers.py start, answer, stop, come back and pause.

Each check speaks the server's own protocol over a raw socket (no client library), so it
runs on every Python of the matrix.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import socket
import struct

import pytest

import dbservers

KINDS = sorted(dbservers.SERVERS)


def _server(kind):
    reason = dbservers.missing(kind)
    if reason:
        if os.environ.get('CI'):
            pytest.fail(reason)
        pytest.skip(reason)
    return dbservers.SERVERS[kind][0]()


def _exchange(port, request, timeout=5.0):
    connection = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        if request:
            connection.sendall(request)
        return connection.recv(4096)
    finally:
        connection.close()


def _bson_hello():
    hello = b'\x10hello\x00' + struct.pack('<i', 1)
    database = b'\x02$db\x00' + struct.pack('<i', 6) + b'admin\x00'
    body = hello + database + b'\x00'
    return struct.pack('<i', len(body) + 4) + body


def _greeting(kind, port):
    """What the server says first, in its own protocol."""
    if kind == 'redis':
        return _exchange(port, b'PING\r\n')
    if kind == 'mariadb':
        return _exchange(port, None)
    if kind == 'postgres':
        return _exchange(port, struct.pack('>ii', 8, 80877103))  # SSLRequest: 'N' or 'S'
    document = _bson_hello()
    message = struct.pack('<iiii', 16 + 4 + 1 + len(document), 1, 0, 2013)
    return _exchange(port, message + struct.pack('<i', 0) + b'\x00' + document)


EXPECTED = {
    'redis': lambda reply: reply.startswith(b'+PONG'),
    'mariadb': lambda reply: b'MariaDB' in reply,
    'postgres': lambda reply: reply in (b'N', b'S'),
    'mongodb': lambda reply: b'maxWireVersion' in reply,
}


@pytest.mark.parametrize('kind', KINDS)
def test_a_server_answers_in_its_protocol_and_again_after_a_restart(kind):
    with _server(kind) as server:
        port = server.port
        assert EXPECTED[kind](_greeting(kind, port))
        server.stop()
        with pytest.raises(socket.error):
            _greeting(kind, port)
        server.start()
        assert server.port == port
        assert EXPECTED[kind](_greeting(kind, port))
    assert not os.path.exists(server.directory)


def test_redis_keeps_its_data_across_a_restart_and_answers_nothing_while_paused():
    with _server('redis') as server:
        assert _exchange(server.port, b'SET toto 1\r\n') == b'+OK\r\n'
        server.restart()
        assert _exchange(server.port, b'GET toto\r\n') == b'$1\r\n1\r\n'
        with server.paused():
            with pytest.raises(socket.timeout):
                _exchange(server.port, b'PING\r\n', timeout=0.3)
        assert _exchange(server.port, b'PING\r\n') == b'+PONG\r\n'


# -- the fixtures of tests/dbfixtures.py ---------------------------------------------------

@pytest.mark.parametrize('step', ['write', 'read'])
def test_redis_db_starts_each_test_with_an_empty_server(redis_db, step):
    assert redis_db.port == redis_db.server.port and redis_db.database == 0
    assert _exchange(redis_db.port, b'GET toto:fixture\r\n') == b'$-1\r\n'
    assert _exchange(redis_db.port, b'SET toto:fixture 1\r\n') == b'+OK\r\n'


def test_each_sql_test_gets_a_database_of_its_own(request):
    kinds = [kind for kind in ('mariadb', 'postgres') if not dbservers.missing(kind)]
    if not kinds:
        pytest.skip('neither mariadb nor postgres installed')
    for kind in kinds:
        first = request.getfixturevalue(kind + '_db')
        assert first.database.startswith('toto_t')
        assert first.server.create_database(first.database + 'x') is None
        assert first.options()[('mysql' if kind == 'mariadb' else kind) + '_database'] \
            == first.database
        with pytest.raises(ValueError):
            first.server.create_database('x; drop database toto_test')


_INTERRUPTED_RUN = '''
import os, sys, time
sys.path.insert(0, %(tests)r)
import pytest

def test_waits(redis_server):
    with open(%(report)r, 'w') as report:
        report.write('%%d %%d %%s' %% (os.getpid(), redis_server.process.pid,
                                        redis_server.directory))
    time.sleep(60)
'''


@pytest.mark.timeout(60)
def test_an_interrupted_run_leaves_no_server_behind(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    dbservers.missing('redis') and pytest.skip(dbservers.missing('redis'))
    tests = os.path.dirname(os.path.abspath(__file__))
    report = str(tmp_path / 'report')
    script = str(tmp_path / 'test_interrupted.py')
    with open(script, 'w') as source:
        source.write(_INTERRUPTED_RUN % {'tests': tests, 'report': report})
    with open(str(tmp_path / 'conftest.py'), 'w') as source:
        source.write('from dbfixtures import *  # noqa\n')
    run = subprocess.Popen([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                            script], cwd=str(tmp_path),
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                               [tests, os.path.dirname(tests)])),
                           # A run in the background may ignore SIGINT; the inner one must not.
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 40
        while not (os.path.exists(report) and open(report).read()) and time.time() < deadline:
            assert run.poll() is None, 'the inner run ended early'
            time.sleep(0.05)
        _, server_pid, directory = open(report).read().split(' ', 2)
        run.send_signal(signal.SIGINT)  # what Ctrl-C sends
        run.wait()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    deadline = time.time() + 10
    while _alive(int(server_pid)) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(int(server_pid))
    assert not os.path.exists(directory)


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().split(') ')[-1][0] != 'Z'
    except (IOError, OSError):
        return False


_KILLED_RUN = '''
import sys, time
sys.path.insert(0, %(tests)r)
import dbservers
server = dbservers.RedisServer().start()
sys.stdout.write('%%d %%s\\n' %% (server.process.pid, server.directory))
sys.stdout.flush()
time.sleep(60)
'''


@pytest.mark.timeout(60)
def test_a_run_killed_outright_takes_its_servers_along():
    import signal
    import subprocess
    import sys
    import time
    dbservers.missing('redis') and pytest.skip(dbservers.missing('redis'))
    tests = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.Popen([sys.executable, '-c', _KILLED_RUN % {'tests': tests}],
                           stdout=subprocess.PIPE)
    try:
        pid, directory = run.stdout.readline().decode('utf-8').split(' ', 1)
        server_pid = int(pid)
        assert _alive(server_pid)
    finally:
        run.send_signal(signal.SIGKILL)  # no teardown, no atexit
        run.wait()
        run.stdout.close()
    deadline = time.time() + 10
    while _alive(server_pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(server_pid)
    shutil.rmtree(directory.strip())  # what a killed run cannot remove


def test_a_missing_server_skips_locally_and_fails_under_ci(monkeypatch):
    from dbfixtures import require_library, require_server
    monkeypatch.setitem(dbservers.SERVERS, 'nothing',
                        (None, lambda: None, 'apt-get install nothing'))
    monkeypatch.delenv('CI', raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_server('nothing')
    assert 'nothing server not installed (apt-get install nothing)' in str(skipped.value)
    monkeypatch.setenv('CI', 'true')
    with pytest.raises(pytest.fail.Exception):
        require_server('nothing')
    with pytest.raises(pytest.fail.Exception) as failed:
        require_library('toto_no_such_client_library', 'pip install it')
    assert 'pip install it' in str(failed.value)
