"""Run TotoServer programs as real processes and call them over HTTP (Python 2.7 and 3).

A test holds a :class:`ServerGroup`: it starts ``run_server.py`` with options of its
own (port 0 on 127.0.0.1, pidfiles and notes in the test's directory), learns the
port from the server's ``Starting server <id> on port <port>`` line, calls methods
with ``http.client``, runs one-shot commands (``--stop``), and on exit ends every
process it started, daemons included.
"""

from __future__ import print_function

import json
import os
import re
import signal
import socket
import sys
import time

from six.moves import http_client

from support import wait_until
from workerproc import _end, _popen, read_pidfiles, read_text, running

APPS_DIR = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(APPS_DIR)
SERVER_SCRIPT = os.path.join(APPS_DIR, 'run_server.py')

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
_STARTED = re.compile(r'Starting server (\d+) on port (\d+)')


def child_env(notes=None, path=(), conf_file=None):
    """This checkout of toto, the tests' helpers and ``path`` importable; notes go to ``notes``.

    ``conf_file``: the conf file ``run_server.py`` gives TotoServer.
    """
    import toto
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))
    paths = list(path) + [root, APPS_DIR, TESTS_DIR]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.pop('TOTO_TEST_SERVER_CONF', None)
    if conf_file:
        env['TOTO_TEST_SERVER_CONF'] = conf_file
    if notes:
        env['TOTO_TEST_NOTES'] = notes
    return env


def free_port_pair():
    """A loopback port P such that P and P + 1 were free (two processes' event ports)."""
    for _ in range(50):
        first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        second = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            first.bind(('127.0.0.1', 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            try:
                second.bind(('127.0.0.1', port + 1))
            except socket.error:
                continue
            return port
        finally:
            first.close()
            second.close()
    raise AssertionError('no two free neighbouring ports')


def call(port, method, parameters=None, timeout=10.0, path='/'):
    """POST ``{"method", "parameters"}`` to ``path``: ``(status, decoded JSON or text)``."""
    body = json.dumps({'method': method, 'parameters': parameters or {}})
    return request(port, 'POST', path, body, timeout=timeout)


def request(port, verb, path, body=None, headers=None, timeout=10.0, host='127.0.0.1'):
    connection = http_client.HTTPConnection(host, port, timeout=timeout)
    try:
        sent = {'Content-Type': 'application/json', 'Connection': 'close'}
        sent.update(headers or {})
        connection.request(verb, path, body, sent)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    text = data.decode('utf-8', 'replace')
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def refuses_connections(port, host='127.0.0.1'):
    """True when nothing accepts connections on ``port`` any more."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect((host, port))
    except socket.error:
        return True
    finally:
        sock.close()
    return False


class Server(object):
    """One ``run_server.py`` process (the parent of the server's processes)."""

    def __init__(self, name, argv, env, log_path, cwd):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.process = _popen(argv, log_path, env, cwd)
        self.port = None

    @property
    def pid(self):
        return self.process.pid

    def output(self):
        return read_text(self.log_path)

    def describe(self):
        return '--- %s (%s) log:\n%s' % (self.name, ' '.join(self.argv[2:]), self.output())

    def is_running(self):
        return self.process.poll() is None

    def started(self):
        """``{server id: port}`` of the processes that logged their start."""
        return dict((int(index), int(port)) for index, port in _STARTED.findall(self.output()))

    def wait_started(self, processes=1, timeout=START_TIMEOUT):
        """Wait until ``processes`` processes started; return the port."""
        def ready():
            if not self.is_running():
                raise AssertionError('the server exited:\n' + self.describe())
            return len(self.started()) >= processes
        wait_until(ready, timeout, message=lambda: 'not started within %.0f s:\n%s'
                   % (timeout, self.describe()))
        self.port = list(self.started().values())[0]
        return self.port

    def wait_exit(self, timeout=STOP_TIMEOUT):
        wait_until(lambda: not self.is_running(), timeout,
                   message=lambda: '%s still running after %.0f s\n%s'
                           % (self.name, timeout, self.describe()))
        return self.process.returncode

    def signal(self, signum):
        self.process.send_signal(signum)

    def end(self):
        _end(self.process)


class ServerGroup(object):
    """The servers and commands of one test, all ended on exit."""

    def __init__(self, directory):
        self.directory = directory
        self.notes = os.path.join(directory, 'notes')
        os.mkdir(self.notes)
        self.servers = []
        self._count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def path(self, name):
        return os.path.join(self.directory, name)

    def _name(self, prefix):
        self._count += 1
        return '%s%d' % (prefix, self._count)

    def argv(self, args, processes=1, conf_file=None):
        """The command line: ``args`` after the usual options (web_methods unless a conf
        file or ``args`` name the method module)."""
        argv = [sys.executable, SERVER_SCRIPT, '--port=0', '--bind_host=127.0.0.1',
                '--processes=%d' % processes, '--pidfile=' + self.path('server.pid')]
        if not conf_file and not [arg for arg in args if arg.startswith('--method_module')]:
            argv.append('--method_module=web_methods')
        return argv + list(args)

    def start(self, args=(), processes=1, wait=True, path=(), conf_file=None):
        """Start a server; with ``wait``, return once its ``processes`` processes started.

        ``path``: more folders to import from (before the test apps); ``conf_file``:
        the conf file given to TotoServer.
        """
        name = self._name('server')
        server = Server(name, self.argv(args, processes, conf_file),
                        child_env(self.notes, path, conf_file),
                        self.path(name + '.log'), self.directory)
        self.servers.append(server)
        if wait:
            server.wait_started(processes)
        return server

    def command(self, args, processes=1, timeout=30.0, path=()):
        """Run ``run_server.py`` with ``args`` (e.g. ``--stop``) to its end: (code, output)."""
        name = self._name('command')
        log_path = self.path(name + '.log')
        process = _popen(self.argv(args, processes), log_path, child_env(self.notes, path),
                         self.directory)
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            _end(process)
            raise AssertionError('%r did not finish within %.0f s:\n%s'
                                 % (args, timeout, read_text(log_path)))
        return process.returncode, read_text(log_path)

    def note(self, prefix, suffix='', timeout=10.0):
        """Wait for a note named ``prefix...suffix``; return the part between."""
        def find():
            for name in sorted(os.listdir(self.notes)):
                if (name.startswith(prefix) and name.endswith(suffix)
                        and not name.endswith('.tmp')):
                    return name[len(prefix):len(name) - len(suffix)]
            return None
        return wait_until(find, timeout, message=lambda: 'no note %s*%s within %.0f s:\n%s'
                          % (prefix, suffix, timeout, self.logs()))

    def pidfiles(self):
        return dict((os.path.basename(path), pid) for path, pid in
                    read_pidfiles(self.path('server*.pid')).items())

    def logs(self):
        return '\n'.join(server.describe() for server in self.servers)

    def close(self):
        for server in reversed(self.servers):
            server.end()
        for pid in self.pidfiles().values():
            if running(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
