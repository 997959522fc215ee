"""Run TotoWorkerService programs as real processes and call them (Python 2.7 and 3).

A test holds a :class:`ServiceGroup`: it starts ``workerservice.py`` under any interpreter
with addresses of its own (a free loopback port, ipc sockets in the test's directory),
runs one-shot commands such as ``--command=shutdown`` or ``--daemon=stop``, opens
``ZMQWorkerConnection`` clients and raw ``DEALER`` sockets, and on exit closes them and
ends every process it started, daemons included.  Nothing is mocked: these are the
processes and sockets a Toto deployment runs.
"""

from __future__ import print_function

import errno
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from support import dispatch_args, free_port, wait_until

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
SERVICE_SCRIPT = os.path.join(TESTS_DIR, 'workerservice.py')
CLIENT_SCRIPT = os.path.join(TESTS_DIR, 'workerclient.py')
METHOD_MODULE = 'worker_methods'

#: How long a service may take to answer its first call.
START_TIMEOUT = 20.0
#: How long a process may take to exit once asked to.
STOP_TIMEOUT = 10.0
# ipc:// paths are AF_UNIX paths (at most about 107 bytes with the file name).
_MAX_SOCKET_DIR = 80
_HAVE_PROC = os.path.isdir('/proc/self')


def call(connection, method, parameters=None, timeout=5.0):
    """Call ``method`` through ``connection`` and return the answer (or timeout error)."""
    future = connection.invoke(method, {} if parameters is None else parameters,
                               timeout=timeout, **{'await': True})
    # A call expires between timeout and twice that: wait a little longer than that.
    return future.result(2 * timeout + 5)


def answered(result):
    """True for the answer of the ``pid`` method (not a timeout or an error)."""
    return isinstance(result, dict) and 'pid' in result


def wait_for_answer(connection, timeout=START_TIMEOUT, logs=lambda: '', alive=lambda: True):
    """Call ``pid`` with short timeouts until a worker answers; return that answer.

    Gives up early when ``alive()`` turns false (the service exited).
    """
    deadline = time.time() + timeout
    result = None
    while time.time() < deadline and alive():
        result = call(connection, 'pid', timeout=0.5)
        if answered(result):
            return result
    raise AssertionError('no answer within %.0f s (last result %r, service %s)\n%s'
                         % (timeout, result, 'running' if alive() else 'exited', logs()))


def pids_answering(connection, count, timeout=START_TIMEOUT, logs=lambda: ''):
    """Call ``pid`` until ``count`` distinct processes answered; return answers by pid."""
    deadline = time.time() + timeout
    answers = {}
    while len(answers) < count:
        if time.time() > deadline:
            raise AssertionError('%d of %d processes answered within %.0f s: %r\n%s'
                                 % (len(answers), count, timeout, sorted(answers), logs()))
        result = call(connection, 'pid', timeout=1.0)
        if answered(result):
            answers[result['pid']] = result
    return answers


def running(pid):
    """True while ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    if not _HAVE_PROC:
        return True
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (IOError, OSError) as error:
        return error.errno != errno.ENOENT


def group_running(pgid):
    """True while any process of process group ``pgid`` is left (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def read_text(path):
    try:
        with io.open(path, encoding='utf-8', errors='replace') as stream:
            return stream.read()
    except IOError as error:
        if error.errno == errno.ENOENT:
            return ''
        raise


def read_pidfiles(pattern):
    """``{path: pid}`` for the pidfiles matching ``pattern`` (skipping half-written ones)."""
    pids = {}
    for path in glob.glob(pattern):
        text = read_text(path).strip()
        if text.isdigit():
            pids[path] = int(text)
    return pids


def child_env(python=None, kwargs=None, conf_file=None):
    """The environment for a child: this checkout of toto and the test method package."""
    env = dict(os.environ)
    if python is None:
        import toto
        root = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))
    else:
        root = REPO_ROOT
    paths = [TESTS_DIR, root]
    if env.get('PYTHONPATH') and python is None:
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.pop('TOTO_TEST_SERVICE_KWARGS', None)
    env.pop('TOTO_TEST_SERVICE_CONF', None)
    if kwargs:
        env['TOTO_TEST_SERVICE_KWARGS'] = json.dumps(kwargs)
    if conf_file:
        env['TOTO_TEST_SERVICE_CONF'] = conf_file
    return env


def _popen(argv, log_path, env, cwd):
    """Start ``argv`` in a session of its own, its output appended to ``log_path``."""
    if sys.version_info[0] >= 3:
        session = {'start_new_session': True}
    else:
        session = {'preexec_fn': os.setsid}
    with open(log_path, 'ab') as log, open(os.devnull, 'rb') as devnull:
        return subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, close_fds=True, **session)


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError as error:
        if error.errno not in (errno.ESRCH, errno.EPERM):
            raise


def _end(process):
    """Ask ``process`` to stop (SIGTERM), then kill whatever is left of its session."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
        except OSError:
            pass
        deadline = time.time() + STOP_TIMEOUT
        while process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
    # The process leads its own process group: this reaches its children too.
    _kill_group(process.pid)
    if process.poll() is None:
        process.kill()
    process.wait()


class Service(object):
    """One ``workerservice.py`` process; ``address`` is where clients call it."""

    def __init__(self, name, argv, env, log_path, cwd, address=None,
                 socket_address=None, control_address=None):
        self.name = name
        self.argv = argv
        self.address = address
        self.socket_address = socket_address
        self.control_address = control_address
        self.log_path = log_path
        self.process = _popen(argv, log_path, env, cwd)

    @property
    def pid(self):
        return self.process.pid

    def output(self):
        """What the service logged so far."""
        return read_text(self.log_path)

    def describe(self):
        return '--- %s (%s) log:\n%s' % (self.name, ' '.join(self.argv[1:]), self.output())

    def is_running(self):
        return self.process.poll() is None

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the service to exit by itself; return its exit code."""
        wait_until(lambda: not self.is_running(), timeout,
                   message=lambda: '%s still running after %.0f s\n%s'
                           % (self.name, timeout, self.describe()))
        return self.process.returncode

    def end(self):
        _end(self.process)


class CommandResult(object):
    def __init__(self, returncode, output):
        self.returncode = returncode
        self.output = output

    def __repr__(self):
        return 'CommandResult(%r, %r)' % (self.returncode, self.output)


class ServiceGroup(object):
    """The services, clients and commands of one test, all ended on exit."""

    def __init__(self, directory):
        self.directory = directory
        if len(directory) <= _MAX_SOCKET_DIR:
            self.socket_directory = directory
            self._own_socket_directory = False
        else:
            self.socket_directory = tempfile.mkdtemp(prefix='toto-ipc-')
            self._own_socket_directory = True
        self.services = []
        self.connections = []
        self._sockets = []
        self._context = None
        self._daemon_pids = set()
        self._count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- addresses -------------------------------------------------------------------

    def ipc(self, name):
        return 'ipc://' + os.path.join(self.socket_directory, name + '.sock')

    @staticmethod
    def tcp():
        return 'tcp://127.0.0.1:%d' % free_port()

    def path(self, name):
        return os.path.join(self.directory, name)

    # -- processes -------------------------------------------------------------------

    def _name(self, prefix):
        self._count += 1
        return '%s%d' % (prefix, self._count)

    def service_args(self, name, processes=1, address=None, method_module=METHOD_MODULE):
        """The usual command line: its own router address, worker and control sockets."""
        args = []
        if method_module:
            args.append('--method_module=' + method_module)
        if processes is not None:
            args.append('--processes=%d' % processes)
        if address is not None:
            args.append('--worker_bind_address=' + address)
        args.append('--worker_socket_address=' + self.ipc(name + '-workers'))
        args.append('--control_socket_address=' + self.ipc(name + '-control'))
        return args

    def start(self, args=(), processes=1, address=None, name=None, python=None,
              kwargs=None, conf_file=None, wait=True, method_module=METHOD_MODULE):
        """Start a worker service and, with ``wait``, return once a call is answered.

        ``address`` defaults to a free loopback port; pass ``''`` for a worker-only
        service.  ``args`` come after the usual ones, so they override them.
        ``processes=None`` or ``method_module=None`` leave those options off the command
        line (for ``kwargs`` or ``conf_file`` to set).
        """
        name = name or self._name('service')
        if address is None:
            address = self.tcp()
        argv = [python or sys.executable, SERVICE_SCRIPT]
        argv += self.service_args(name, processes, address, method_module) + list(args)
        argv += dispatch_args(args)
        service = Service(name, argv, child_env(python, kwargs, conf_file),
                          self.path(name + '.log'), self.directory,
                          address=address or None,
                          socket_address=self.ipc(name + '-workers'),
                          control_address=self.ipc(name + '-control'))
        self.services.append(service)
        if wait and service.address:
            self.wait_ready(service)
        return service

    def wait_ready(self, service, timeout=START_TIMEOUT):
        """Wait until ``service`` answers a call; return that answer."""
        connection = self.connect(service.address)
        return wait_for_answer(connection, timeout, self.logs, service.is_running)

    def command(self, args, python=None, timeout=30.0, kwargs=None, conf_file=None):
        """Run ``workerservice.py args`` to its end; return its exit code and output."""
        name = self._name('command')
        log_path = self.path(name + '.log')
        argv = [python or sys.executable, SERVICE_SCRIPT]
        argv.extend(args)
        process = _popen(argv, log_path, child_env(python, kwargs, conf_file), self.directory)
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            _end(process)
            raise AssertionError('%s did not finish within %.0f s:\n%s'
                                 % (' '.join(argv), timeout, read_text(log_path)))
        # A daemon it started lives in a session of its own, untouched by this.
        return CommandResult(process.returncode, read_text(log_path))

    def run_client(self, python, address, method, timeout=60.0):
        """Run ``workerclient.py`` under ``python``; return its exit code and output."""
        name = self._name('client')
        log_path = self.path(name + '.log')
        argv = [python, CLIENT_SCRIPT, address, method]
        process = _popen(argv, log_path, child_env(python), self.directory)
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            _end(process)
            raise AssertionError('client did not finish within %.0f s:\n%s'
                                 % (timeout, read_text(log_path)))
        return CommandResult(process.returncode, read_text(log_path))

    def remember_daemon(self, pids):
        """Processes detached from the group's sessions that must end with the test."""
        self._daemon_pids.update(pids)

    def logs(self):
        return '\n'.join(service.describe() for service in self.services)

    # -- clients ---------------------------------------------------------------------

    def connect(self, address, **kwargs):
        """A ZMQWorkerConnection (5 s default timeout) closed when the group closes."""
        from toto.zmqworkerconnection import ZMQWorkerConnection
        kwargs.setdefault('timeout', 5.0)
        connection = ZMQWorkerConnection(address, **kwargs)
        self.connections.append(connection)
        return connection

    def raw_dealer(self, address):
        """A bare pyzmq DEALER connected to ``address``, closed with the group."""
        import zmq
        if self._context is None:
            self._context = zmq.Context()
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(address)
        self._sockets.append(socket)
        return socket

    # -- the end ---------------------------------------------------------------------

    def close(self):
        errors = []
        for connection in self.connections:
            try:
                connection.close()
            except Exception as error:  # keep ending the rest
                errors.append(error)
        for socket in self._sockets:
            socket.close(0)
        if self._context is not None:
            self._context.term()
        for service in reversed(self.services):
            try:
                service.end()
            except Exception as error:  # keep ending the rest
                errors.append(error)
        self._end_daemons()
        if self._own_socket_directory:
            shutil.rmtree(self.socket_directory, ignore_errors=True)
        if errors:
            raise errors[0]

    def _end_daemons(self):
        pids = set(self._daemon_pids)
        pids.update(read_pidfiles(os.path.join(self.directory, '*.pid')).values())
        own_group = os.getpgrp()
        for pid in pids:
            if not running(pid):
                continue
            try:
                group = os.getpgid(pid)
            except OSError:
                group = None
            if group and group != own_group:
                _kill_group(group)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as error:
                if error.errno != errno.ESRCH:
                    raise
        wait_until(lambda: not [pid for pid in pids if running(pid)], STOP_TIMEOUT,
                   message=lambda: 'daemon processes still running: %r' % sorted(pids))
