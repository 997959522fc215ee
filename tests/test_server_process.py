"""TotoServer as apps run it: real server processes on a port from the OS, called over HTTP.

Each test starts ``server_apps/run_server.py`` (``TotoServer(conf).run()``) with its own
options, pidfiles and notes in the test's directory, and calls it with ``http.client``.
"""

import contextlib
import json
import os
import signal
import socket
import threading
import time

import pytest
from six.moves import http_client
from server_apps.serverproc import ServerGroup, call, refuses_connections, request
from support import wait_until
from workerproc import group_running, running


@pytest.fixture
def servers(tmp_path):
    with ServerGroup(str(tmp_path)) as group:
        yield group


@contextlib.contextmanager
def children_take_sigint_by_default():
    """Servers started within get SIGINT's default action, as from a terminal.

    The suite may run in the background with SIGINT ignored, which children inherit.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Background(object):
    """A call made on a thread of its own; ``result()`` waits for its answer."""

    def __init__(self, port, method, parameters, timeout=20.0):
        self.outcome = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run,
                                        args=(port, method, parameters, timeout))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, port, method, parameters, timeout):
        try:
            self.outcome = call(port, method, parameters, timeout=timeout)
        except Exception as error:  # reported by result()
            self.outcome = error
        self._done.set()

    def result(self, timeout=20.0):
        assert self._done.wait(timeout), 'no answer within %.0f s' % timeout
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_a_server_answers_calls_on_the_port_it_logged(servers):
    server = servers.start()

    status, answer = call(server.port, 'echo', {'text': 'hello'})

    assert status == 200
    assert answer == {'result': {'text': 'hello'}}
    assert server.started() == {0: server.port}


def test_processes_share_one_port(servers):
    server = servers.start(processes=2)
    assert sorted(server.started()) == [0, 1]
    assert len(set(server.started().values())) == 1

    pids = set()
    deadline = time.time() + 10
    while len(pids) < 2 and time.time() < deadline:
        pids.add(call(server.port, 'pid')[1]['result']['pid'])

    assert len(pids) == 2, 'one process answered every call: %r' % pids


def test_the_startup_function_gets_the_database_connection_and_the_application(servers):
    server = servers.start(['--startup_function=startup.on_start'])

    status, answer = call(server.port, 'startup_info')

    assert answer == {'result': {'db_connection': 'FakeConnection',
                                 'application': 'ServerApplication', 'has_db': True}}


def test_root_puts_every_method_under_a_prefix(servers):
    server = servers.start(['--root=/api'])
    body = '{"parameters": {"n": 1}}'

    assert request(server.port, 'POST', '/api/echo', body) == (200, {'result': {'n': 1}})
    assert request(server.port, 'POST', '/api/', '{"method": "echo", "parameters": {"n": 2}}'
                   ) == (200, {'result': {'n': 2}})
    # As in 1.0.12, the prefix is not a path segment of its own.
    assert request(server.port, 'POST', '/apiecho', body) == (200, {'result': {'n': 1}})
    assert request(server.port, 'POST', '/echo', body)[0] == 404


def test_sigterm_lets_a_request_in_hand_finish_and_takes_no_new_ones(servers):
    server = servers.start(['--shutdown_timeout=20'])
    slow = Background(server.port, 'slow', {'seconds': 2})
    servers.note('slow-')

    server.signal(signal.SIGTERM)

    wait_until(lambda: refuses_connections(server.port), 5,
               message=lambda: 'still accepting connections:\n' + servers.logs())
    assert slow.result() == (200, {'result': {'slept': 2.0, 'pid': int(servers.note('slow-'))}})
    assert server.wait_exit() == 0
    assert 'server 0: every request taken is answered' in server.output()


def test_ctrl_c_lets_a_request_in_hand_finish(servers):
    with children_take_sigint_by_default():
        server = servers.start(['--shutdown_timeout=20'], processes=2)
    slow = Background(server.port, 'slow', {'seconds': 1.5})
    servers.note('slow-')

    os.killpg(server.pid, signal.SIGINT)   # what a terminal sends to the foreground group

    assert slow.result()[1]['result']['slept'] == 1.5
    assert server.wait_exit() == 0
    wait_until(lambda: not group_running(server.pid), 10,
               message=lambda: 'a process of the server outlived it:\n' + server.describe())
    assert server.output().count('every request taken is answered') == 2


def test_the_stop_is_bounded_by_shutdown_timeout(servers):
    server = servers.start(['--shutdown_timeout=0.5'])
    slow = Background(server.port, 'slow', {'seconds': 30})
    servers.note('slow-')
    started = time.time()

    server.signal(signal.SIGTERM)

    assert server.wait_exit() == 0
    assert time.time() - started < 10
    assert 'shutdown_timeout (0.5 s) is over with 1 request' in server.output()
    # The connection closed without an answer.
    with pytest.raises((http_client.HTTPException, socket.error)):
        slow.result()


def test_a_second_sigterm_stops_every_process_at_once(servers):
    server = servers.start(['--shutdown_timeout=30'])
    Background(server.port, 'slow', {'seconds': 30})
    pid = int(servers.note('slow-'))
    server.signal(signal.SIGTERM)
    wait_until(lambda: 'server 0 stopping' in server.output(), 5,
               message=server.describe)
    started = time.time()

    server.signal(signal.SIGTERM)

    server.wait_exit()
    assert time.time() - started < 5
    wait_until(lambda: not running(pid), 5, message=lambda: 'process %d outlived the server' % pid)


def test_daemon_start_restart_and_stop(servers):
    log = servers.path('daemon.log')
    args = ['--log_file_prefix=' + log]

    code, output = servers.command(args + ['--start'], processes=2)

    assert code == 0, output
    # 1.0.12's names: the main process's file is the "master" one.
    wait_until(lambda: sorted(servers.pidfiles()) == ['server.1.pid', 'server.2.pid',
                                                      'server.master.pid'], 15,
               message=lambda: 'pidfiles: %r' % servers.pidfiles())
    first = servers.pidfiles()
    port = wait_until(lambda: _started_port(log), 15, message='no start in the log')
    assert call(port, 'echo', {'up': 1}) == (200, {'result': {'up': 1}})

    code, output = servers.command(args + ['--restart'], processes=2)

    assert code == 0, output
    assert not [pid for pid in first.values() if running(pid)]
    wait_until(lambda: len(servers.pidfiles()) == 3 and
               not set(servers.pidfiles().values()) & set(first.values()), 15,
               message=lambda: 'pidfiles: %r' % servers.pidfiles())
    second = servers.pidfiles()

    code, output = servers.command(args + ['--stop'], processes=2)

    assert code == 0, output
    assert servers.pidfiles() == {}
    wait_until(lambda: not [pid for pid in second.values() if running(pid)], 10,
               message=lambda: 'still running: %r' % second)


def _started_port(log_path):
    from server_apps.serverproc import _STARTED
    from workerproc import read_text
    found = _STARTED.findall(read_text(log_path))
    return int(found[-1][1]) if found else None


def test_bodies_over_max_body_size_are_refused(servers):
    server = servers.start(['--max_body_size=1000'])

    status, answer = call(server.port, 'echo', {'text': 'x' * 2000})

    assert status == 413
    assert call(server.port, 'echo', {'text': 'x' * 100}) == (200, {'result': {'text': 'x' * 100}})


def test_a_client_that_sends_nothing_is_disconnected_after_idle_connection_timeout(servers):
    server = servers.start(['--idle_connection_timeout=0.5'])
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=5)
    try:
        sock.sendall(b'POST / HTTP/1.1\r\nHost: x\r\n')   # headers never end
        started = time.time()
        assert sock.recv(100) == b''
        assert time.time() - started < 4
    finally:
        sock.close()


def _session_cookie_flags(port, headers):
    connection = http_client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        body = json.dumps({'method': 'new_session', 'parameters': {}})
        sent = {'Content-Type': 'application/json', 'Connection': 'close'}
        sent.update(headers)
        connection.request('POST', '/', body, sent)
        response = connection.getresponse()
        data = response.read()
        cookie = response.getheader('Set-Cookie')
    finally:
        connection.close()
    assert cookie and cookie.startswith('toto-session-id='), (response.status, data)
    return [part.strip().lower() for part in cookie.split(';')[1:]]


@pytest.mark.parametrize('header', ['X-Forwarded-Proto', 'X-Scheme'])
def test_behind_a_tls_proxy_xheaders_makes_the_session_cookie_secure(servers, header):
    cookies = ['--database=json', '--db_host=' + servers.path('db.json'), '--db_port=1',
               '--use_cookies', '--secure_cookies=false']
    proxied = servers.start(cookies + ['--xheaders'])
    direct = servers.start(cookies)

    assert 'secure' in _session_cookie_flags(proxied.port, {header: 'https'})
    assert 'secure' not in _session_cookie_flags(proxied.port, {header: 'http'})
    # Without the option a client's header is not believed (1.0.12's behaviour).
    assert 'secure' not in _session_cookie_flags(direct.port, {header: 'https'})


def test_an_unknown_event_mode_stops_the_start_with_the_reason(servers):
    code, output = servers.command(['--event_mode=sometimes'])

    assert code != 0
    assert "event_mode is 'off', 'on' or 'only', not 'sometimes'" in output


def test_options_of_the_method_package_come_from_the_conf_file_and_command_line(servers):
    greeting_only = servers.path('greeting.conf')
    with open(greeting_only, 'w') as conf_file:
        conf_file.write("greeting = 'hello from the conf'\n")
    whole = servers.path('app.conf')
    with open(whole, 'w') as conf_file:
        conf_file.write("method_module = 'conf_methods'\ngreeting = 'hello from the conf'\n")

    # --method_module alone on the command line: 1.0.12's pre-pass skipped it,
    # imported the default "methods" package, and read no greeting.
    from_conf = servers.start(['--method_module=conf_methods'], conf_file=greeting_only)
    from_command_line = servers.start(['--greeting=hello from the command line'],
                                      conf_file=whole)

    assert call(from_conf.port, 'greet')[1] == {'result': 'hello from the conf'}
    assert call(from_command_line.port, 'greet')[1] == {
        'result': 'hello from the command line'}


def test_a_client_that_sends_half_a_body_is_disconnected_after_body_timeout(servers):
    server = servers.start(['--body_timeout=0.5'])
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=5)
    try:
        sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                     b'Content-Length: 100\r\n\r\n{"parameters":')
        started = time.time()
        assert sock.recv(100) == b''
        assert time.time() - started < 4
    finally:
        sock.close()
