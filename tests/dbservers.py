"""Real database servers for the driver tests: Redis, MariaDB, PostgreSQL and a MongoDB wire server.

Each server is a child process on a free 127.0.0.1 port, with its data in a temporary
directory that is removed when the server is closed, so two test runs can go side by side.
The same object stops and starts its server again on the same port and data (the fault
tests), and can freeze it with SIGSTOP to stand for a database that no longer answers::

    with RedisServer() as server:
        client = redis.StrictRedis('127.0.0.1', server.port)
        server.stop()                 # requests now fail ...
        server.start()                # ... and the same data is back
        with server.paused():         # connections stay open, nothing answers
            ...

The programs come from Debian's packages (``redis-server``, ``mariadb-server``,
``postgresql``); the MongoDB wire server is SecantusDB's ``secantusd-py`` (PyPI, Python
3.10+), found through ``$TOTO_MONGODB_SERVER`` or on ``PATH``. :func:`missing` says what
is not installed, so fixtures can skip (or fail under CI) with that reason. Tests use them
through the session fixtures of tests/dbfixtures.py (``redis_db``, ``mariadb_db``...), which
also give each test a fresh database (``create_database``, ``flush``).

A server started by the main thread is killed by the kernel if the test run dies (Linux's
parent-death signal); a run that ends normally or by Ctrl-C kills it and removes its directory.
"""

from __future__ import absolute_import, division, print_function

import contextlib
import ctypes
import errno
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from support import free_port

logger = logging.getLogger('tests.dbservers')

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_POLL_INTERVAL = 0.02
_START_ATTEMPTS = 3  # a free port can be taken by another process before the server binds it


def _which(program):
    for directory in os.environ.get('PATH', os.defpath).split(os.pathsep):
        path = os.path.join(directory, program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _postgres_program(name):
    # Debian keeps the server programs out of PATH, in /usr/lib/postgresql/<major>/bin.
    found = _which(name)
    if found:
        return found
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/' + name),
                        key=lambda path: int(path.split('/')[4]))
    return candidates[-1] if candidates else None


def _mongodb_program():
    return os.environ.get('TOTO_MONGODB_SERVER') or _which('secantusd-py')


try:
    # The running program's symbols, libc's included; loaded here, not in the forked child.
    _prctl = ctypes.CDLL(None).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    # Linux: the kernel sends the server SIGKILL when the test run that started it dies, so
    # a run killed outright (SIGKILL, or SIGTERM, which skips teardown) leaves no server
    # behind; only its temporary directory stays then. Elsewhere this does nothing.
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _port_answers(port):
    try:
        connection = socket.create_connection(('127.0.0.1', port), timeout=0.5)
    except (IOError, OSError):
        return False
    connection.close()
    return True


class ServerFailed(RuntimeError):
    """A database server did not start (the message ends with its log)."""


class _ServerProcess(object):
    """One database server process: start, stop, start again, pause; data in a temp dir."""

    name = 'server'

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix='toto-%s-' % self.name)
        self.port = None
        self.process = None
        self._prepared = False

    # -- what each server says -------------------------------------------------------

    def _prepare(self):
        """Make the data directory once (initdb and the like)."""

    def _command(self):
        raise NotImplementedError()

    def _ready(self):
        return _port_answers(self.port)

    def _after_first_start(self):
        """Create the test database and user once the server answers."""

    def _stop_signal(self):
        return signal.SIGTERM

    def _run_as(self):
        return None  # (uid, gid) to drop to, or None

    # -- the life cycle ----------------------------------------------------------------

    def start(self):
        """Start the server (again: same port and data) and wait until it answers."""
        if self.process is not None:
            return self
        if not self._prepared:
            self._prepare()
        first = self.port is None
        for attempt in range(_START_ATTEMPTS):
            if first:
                self.port = free_port()
            try:
                self._spawn_and_wait()
                break
            except ServerFailed:
                if not first or attempt == _START_ATTEMPTS - 1:
                    raise
                logger.warning('%s did not start on port %d, trying another', self.name,
                               self.port)
        if first:
            self._after_first_start()
        self._prepared = True
        return self

    def _spawn_and_wait(self):
        # The kernel's parent-death signal follows the thread that forked, so only a server
        # started by the main thread gets it (one started by a thread would die with it).
        self._tie_to_parent = isinstance(threading.current_thread(), threading._MainThread)
        with open(self.path('server.log'), 'ab') as log, open(os.devnull, 'rb') as nothing:
            self.process = subprocess.Popen(self._command(), stdin=nothing, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            preexec_fn=self._child_setup, close_fds=True)
        deadline = time.time() + START_TIMEOUT
        while not self._ready():
            if self.process.poll() is not None or time.time() > deadline:
                self._reap()
                raise ServerFailed('%s did not start on port %d:\n%s'
                                   % (self.name, self.port, self.log_tail()))
            time.sleep(_POLL_INTERVAL)

    def _child_setup(self):
        # Own process group, so a SIGINT meant for the test run does not reach the server;
        # and default signal handling, as a run in the background with SIGINT ignored would
        # pass the ignored SIGINT on (PostgreSQL's fast shutdown is SIGINT).
        os.setsid()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        ids = self._run_as()
        if ids is not None:
            os.setgid(ids[1])
            os.setuid(ids[0])
        if getattr(self, '_tie_to_parent', False):
            _die_with_parent()  # after setuid, which clears the parent-death signal

    def stop(self, kill=False):
        """Stop the server (SIGKILL with ``kill=True``) and wait until it has gone."""
        if self.process is None:
            return
        self._signal(signal.SIGCONT)  # a paused server cannot act on its stop signal
        self._signal(signal.SIGKILL if kill else self._stop_signal())
        deadline = time.time() + STOP_TIMEOUT
        while self.process.poll() is None and time.time() < deadline:
            time.sleep(_POLL_INTERVAL)
        if self.process.poll() is None:
            logger.warning('%s did not stop within %.0f s: killed', self.name, STOP_TIMEOUT)
        self._reap()

    def restart(self):
        self.stop()
        return self.start()

    @contextlib.contextmanager
    def paused(self):
        """Freeze the server for the block: it keeps its sockets but answers nothing.

        Its child processes are stopped too (PostgreSQL's backends answer queries), and
        the block starts only once every thread shows state T: SIGSTOP takes effect
        thread by thread, as each is next scheduled, and a thread still running could
        answer a query.
        """
        self._signal(signal.SIGSTOP)
        pids = []
        try:
            if self.process is not None:
                pids = [self.process.pid] + _children(self.process.pid)
            for pid in pids[1:]:
                _signal_pid(pid, signal.SIGSTOP)
            for pid in pids:
                _wait_until_stopped(pid)
            yield self
        finally:
            for pid in pids[1:]:
                _signal_pid(pid, signal.SIGCONT)
            self._signal(signal.SIGCONT)

    def close(self):
        # The data goes with the directory, so nothing needs a clean shutdown (SecantusDB's
        # takes seconds: a WiredTiger checkpoint).
        self.stop(kill=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()  # a server that did not start leaves no directory either
            raise

    def __exit__(self, *exc_info):
        self.close()

    # -- helpers -----------------------------------------------------------------------

    def path(self, *names):
        return os.path.join(self.directory, *names)

    def log_tail(self, size=2000):
        try:
            with open(self.path('server.log'), 'rb') as log:
                return log.read()[-size:].decode('utf-8', 'replace')
        except (IOError, OSError):
            return '(no log)'

    def _signal(self, number):
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.send_signal(number)
            except OSError as error:
                if error.errno != errno.ESRCH:
                    raise

    def _reap(self):
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None


class RedisServer(_ServerProcess):
    """``redis-server`` with an append-only file, so a restart keeps the data."""

    name = 'redis'

    def _command(self):
        return ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
                '--dir', self.directory, '--save', '', '--appendonly', 'yes',
                '--appendfsync', 'no', '--daemonize', 'no']

    def _ready(self):
        # The port opens before the append-only file is loaded; until then PING says LOADING.
        try:
            connection = socket.create_connection(('127.0.0.1', self.port), timeout=0.5)
        except (IOError, OSError):
            return False
        try:
            connection.sendall(b'PING\r\n')
            return connection.recv(7).startswith(b'+PONG')
        except (IOError, OSError):
            return False
        finally:
            connection.close()

    def flush(self):
        """Empty every Redis database of the server (FLUSHALL)."""
        connection = socket.create_connection(('127.0.0.1', self.port), timeout=10.0)
        try:
            connection.sendall(b'FLUSHALL\r\n')
            reply = connection.recv(64)
        finally:
            connection.close()
        if not reply.startswith(b'+OK'):
            raise ServerFailed('redis: FLUSHALL answered %r' % (reply,))


class MariaDBServer(_ServerProcess):
    """``mariadbd`` with database ``toto_test``, user ``toto`` / ``toto`` from any host."""

    name = 'mariadb'
    database, user, password = 'toto_test', 'toto', 'toto'

    def _prepare(self):
        # A temporary directory of its own: installs side by side collided in /tmp.
        os.mkdir(self.path('tmp'))
        command = ['mariadb-install-db', '--no-defaults', '--datadir=' + self.path('data'),
                   '--auth-root-authentication-method=normal', '--skip-test-db',
                   '--skip-name-resolve', '--tmpdir=' + self.path('tmp')]
        if os.geteuid() == 0:
            command.append('--user=root')
        _run(command, self.path('install.log'), self.name)

    def _command(self):
        command = ['mariadbd', '--no-defaults', '--datadir=' + self.path('data'),
                   '--socket=' + self.path('mysqld.sock'), '--port=%d' % self.port,
                   '--bind-address=127.0.0.1', '--pid-file=' + self.path('mysqld.pid'),
                   '--tmpdir=' + self.path('tmp'),
                   '--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=16M',
                   '--innodb-log-file-size=8M', '--innodb-flush-log-at-trx-commit=0',
                   '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci']
        if os.geteuid() == 0:
            command.append('--user=root')
        return command

    def _ready(self):
        # The port opens once InnoDB has started; the greeting is the server's first packet.
        try:
            connection = socket.create_connection(('127.0.0.1', self.port), timeout=0.5)
        except (IOError, OSError):
            return False
        try:
            return bool(connection.recv(4))
        except (IOError, OSError):
            return False
        finally:
            connection.close()

    def _after_first_start(self):
        # The user may use every database: tests make a fresh one each (create_database).
        self._sql("create database {db}; create user '{user}'@'%' identified by '{pw}'; "
                  "grant all on *.* to '{user}'@'%';".format(db=self.database, user=self.user,
                                                            pw=self.password))

    def create_database(self, name):
        """Create the empty database ``name`` (letters, digits and _), usable by the user."""
        self._sql('create database %s' % _identifier(name))

    def _sql(self, sql):
        _run(['mariadb', '--no-defaults', '--socket=' + self.path('mysqld.sock'), '-u', 'root',
              '-e', sql], self.path('setup.log'), self.name)


class PostgresServer(_ServerProcess):
    """``postgres`` with database ``toto_test`` owned by superuser ``toto`` (trust auth).

    PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user
    that Debian's package creates.
    """

    name = 'postgres'
    database, user = 'toto_test', 'toto'

    def _run_as(self):
        if os.geteuid() != 0:
            return None
        account = pwd.getpwnam('postgres')
        return account.pw_uid, account.pw_gid

    def _prepare(self):
        ids = self._run_as()
        if ids is not None:
            os.chown(self.directory, ids[0], ids[1])
        _run([_postgres_program('initdb'), '-D', self.path('data'), '-A', 'trust', '-U',
              self.user, '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'],
             self.path('initdb.log'), self.name, preexec_fn=self._child_setup)

    def _command(self):
        return [_postgres_program('postgres'), '-D', self.path('data'), '-p', str(self.port),
                '-k', self.directory, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
                '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']

    def _ready(self):
        # Line 8 of postmaster.pid says "ready" once connections are accepted (PostgreSQL 10+).
        try:
            with open(self.path('data', 'postmaster.pid')) as pid_file:
                lines = pid_file.read().splitlines()
        except (IOError, OSError):
            return False
        return len(lines) >= 8 and lines[7].strip() == 'ready'

    def _stop_signal(self):
        return signal.SIGINT  # "fast" shutdown; SIGTERM would wait for every client to leave

    def _after_first_start(self):
        self.create_database(self.database)

    def create_database(self, name):
        """Create the empty database ``name`` (letters, digits and _), owned by the user."""
        _run([_which('psql') or _postgres_program('psql'), '-h', '127.0.0.1', '-p',
              str(self.port), '-U', self.user, '-d', 'postgres', '-q', '-c',
              'create database %s' % _identifier(name)], self.path('setup.log'), self.name)


class MongoWireServer(_ServerProcess):
    """SecantusDB's Python server: the MongoDB wire protocol (OP_MSG, wire version 27).

    Not mongod: pymongo 3.6+ and 4 work; pymongo < 3's legacy opcodes (OP_INSERT,
    OP_UPDATE, OP_DELETE, OP_QUERY on a collection) are refused, as mongod >= 6 does.
    """

    name = 'mongodb'

    def _command(self):
        return [_mongodb_program(), '--host', '127.0.0.1', '--port', str(self.port),
                '--storage-path', self.path('data'), '--cache-size', '64M', '--standalone',
                '--log-level', 'WARNING']


def _identifier(name):
    if not re.match(r'^[A-Za-z_][A-Za-z0-9_]{0,62}$', name):
        raise ValueError('not a plain database name: %r' % (name,))
    return name


def _run(command, log_path, name, preexec_fn=None):
    with open(log_path, 'ab') as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=preexec_fn, close_fds=True)
    if status != 0:
        with open(log_path, 'rb') as log:
            tail = log.read()[-2000:].decode('utf-8', 'replace')
        raise ServerFailed('%s: %s exited with %d:\n%s' % (name, command[0], status, tail))


SERVERS = {
    'redis': (RedisServer, lambda: _which('redis-server'), 'apt-get install redis-server'),
    'mariadb': (MariaDBServer, lambda: _which('mariadbd') or _which('mysqld'),
                'apt-get install mariadb-server'),
    'postgres': (PostgresServer, lambda: _postgres_program('initdb'),
                 'apt-get install postgresql'),
    'mongodb': (MongoWireServer, _mongodb_program,
                'pip install SecantusDB (Python 3.10+) and set TOTO_MONGODB_SERVER'),
}


def missing(kind):
    """None when the ``kind`` server can run here, else what to install."""
    server_class, program, install = SERVERS[kind]
    if not program():
        return '%s server not installed (%s)' % (kind, install)
    return None


def _signal_pid(pid, number):
    try:
        os.kill(pid, number)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise


def _children(pid):
    """The pids of ``pid``'s child processes (Linux: /proc/PID/task/*/children)."""
    children = []
    for task in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/children' % (pid, task)) as listed:
                children.extend(int(child) for child in listed.read().split())
        except (IOError, OSError):
            pass  # the thread ended meanwhile
    return children


def _wait_until_stopped(pid, timeout=10.0):
    """Wait (bounded) until every thread of ``pid`` shows state T (stopped)."""
    deadline = time.time() + timeout
    while True:
        states = []
        try:
            tasks = os.listdir('/proc/%d/task' % pid)
        except OSError:
            return  # the process has gone: nothing of it can answer
        for task in tasks:
            try:
                with open('/proc/%d/task/%s/stat' % (pid, task)) as stat:
                    states.append(stat.read().rsplit(')', 1)[1].split()[0])
            except (IOError, OSError):
                pass  # the thread ended meanwhile
        if states and all(state in ('T', 't') for state in states):
            return
        if time.time() >= deadline:
            raise AssertionError('process %d did not stop: %s' % (pid, states))
        time.sleep(0.01)
