"""Plumbing for the fault suite (Python 2.7 and 3): real worker processes, call accounting.

:class:`FaultLab` starts worker services as real processes (``faultservice.py``, each in
a session of its own so that a SIGKILL to its process group takes the router and the
worker processes with it), bare ROUTER workers (``rawworker.py``), clients and raw
sockets, and ends all of them when the test ends.  :class:`Tally` counts every call a
test makes -- sent, answered, timed out, failed, closed, lost, completed twice -- which
the tests assert on and write to the fault report.  :class:`Relay` forwards a TCP
connection and keeps every byte it carried, to look at what crosses the wire.
"""

from __future__ import print_function

import errno
import io
import json
import logging
import os
import pickle
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import workerproc
from support import LoopThread, dispatch_args, free_port, wait_until
from workerproc import read_text

FAULTS_DIR = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(FAULTS_DIR)
SERVICE_SCRIPT = os.path.join(FAULTS_DIR, 'faultservice.py')
RAW_WORKER_SCRIPT = os.path.join(FAULTS_DIR, 'rawworker.py')
TEST_WORKER_SCRIPT = os.path.join(TESTS_DIR, 'zmqworker.py')
BURST_CLIENT_SCRIPT = os.path.join(FAULTS_DIR, 'burstclient.py')
METHOD_MODULE = 'fault_methods'

#: How long a service may take to answer its first call on a loaded machine.
START_TIMEOUT = 20.0
TIMEOUT_RESULT = {'error': 'timeout'}
CLOSED_RESULT = {'error': 'closed'}
#: The text of the one-time warning about pickle open to the network.
EXPOSURE_WARNING = 'accepts pickled calls on'


# -- accounting ---------------------------------------------------------------------------

class Failure(object):
    """A call whose Future failed (HTTP transport errors): the exception it failed with."""

    def __init__(self, error):
        self.error = error

    def __repr__(self):
        return 'Failure(%r)' % (self.error,)


#: What an HTTP call that ran out of time gives a callback (a TotoException's fields).
HTTP_TIMEOUT_RESULT = {'error': {'code': -1, 'value': 'Timeout'}}


def _is_http_timeout(error):
    return (getattr(error, 'code', None), getattr(error, 'value', None)) == (-1, 'Timeout')


def classify(result):
    """The category a call result is counted in."""
    if isinstance(result, Failure):
        return 'timed_out' if _is_http_timeout(result.error) else 'failed'
    if result == TIMEOUT_RESULT or result == HTTP_TIMEOUT_RESULT:
        return 'timed_out'
    if result == CLOSED_RESULT:
        return 'closed'
    if isinstance(result, dict) and 'error' in result:
        return 'errors'
    return 'answered'


CATEGORIES = ('answered', 'timed_out', 'errors', 'failed', 'closed')
#: The counts every report line carries.
COUNT_NAMES = ('sent',) + CATEGORIES + ('lost', 'duplicates')


class Tally(object):
    """Counts the calls of a test: each one registered when sent, each completion kept.

    ``callback(key)`` registers a call and returns the callback to hand to ``invoke``;
    ``future(key, future)`` does the same for a call that returned a Future.  A call that
    completes twice is a duplicate; one that never completes is lost.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self.sent_at = {}
        self.results = {}
        self.done_at = {}
        self.raised = []

    def register(self, key):
        with self._condition:
            if key in self.sent_at:
                raise AssertionError('call key %r registered twice' % (key,))
            self.sent_at[key] = time.time()

    def complete(self, key, result):
        with self._condition:
            self.results.setdefault(key, []).append(result)
            self.done_at.setdefault(key, time.time())
            self._condition.notify_all()

    def callback(self, key):
        self.register(key)
        return lambda result: self.complete(key, result)

    def future(self, key, future):
        """Count the outcome of ``future`` (a Tornado or concurrent.futures Future)."""
        self.register(key)

        def done(finished):
            try:
                result = finished.result()
            except Exception as error:  # the Future failed: counted, not raised
                result = Failure(error)
            self.complete(key, result)
        future.add_done_callback(done)
        return future

    def unsent(self, key, error):
        """``invoke`` raised instead of taking the call: remembered, never expected."""
        with self._condition:
            self.sent_at.pop(key, None)
            self.raised.append((key, error))

    @property
    def sent(self):
        with self._condition:
            return len(self.sent_at)

    @property
    def completed(self):
        with self._condition:
            return len(self.results)

    def wait_all(self, timeout):
        """Wait until every registered call completed; True if they all did in time."""
        deadline = time.time() + timeout
        with self._condition:
            while len(self.results) < len(self.sent_at):
                remaining = deadline - time.time()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.5))
            return True

    def wait_count(self, count, timeout, category=None):
        """Wait until ``count`` calls completed (of ``category``, if given)."""
        deadline = time.time() + timeout
        with self._condition:
            while self._count(category) < count:
                remaining = deadline - time.time()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.5))
            return True

    def _count(self, category):
        if category is None:
            return len(self.results)
        return sum(1 for results in self.results.values() if classify(results[0]) == category)

    def first(self, key):
        with self._condition:
            return self.results[key][0]

    def completions(self, key):
        with self._condition:
            return len(self.results.get(key, ()))

    def of(self, category):
        """``{key: first result}`` of the completed calls in ``category``."""
        with self._condition:
            return dict((key, results[0]) for key, results in self.results.items()
                        if classify(results[0]) == category)

    def latencies(self, keys=None):
        with self._condition:
            keys = self.done_at if keys is None else keys
            return [self.done_at[key] - self.sent_at[key] for key in keys]

    def counts(self):
        with self._condition:
            counts = dict((category, 0) for category in CATEGORIES)
            for results in self.results.values():
                counts[classify(results[0])] += 1
            counts['sent'] = len(self.sent_at)
            counts['lost'] = len([key for key in self.sent_at if key not in self.results])
            counts['duplicates'] = len([key for key, results in self.results.items()
                                        if len(results) > 1])
            counts['raised'] = len(self.raised)
            return counts

    def lost(self):
        """Keys of the calls that never completed."""
        with self._condition:
            return [key for key in self.sent_at if key not in self.results]

    def assert_exactly_once(self):
        counts = self.counts()
        assert counts['lost'] == 0, (counts, 'never completed: %r' % (self.lost()[:5],))
        assert counts['duplicates'] == 0, counts
        assert counts['raised'] == 0, self.raised[:3]
        return counts


class CompactTally(object):
    """Accounting for very many calls (the soak): one byte per call, numbered from 0.

    ``register()`` numbers a new call; ``complete(number, category)`` counts its
    completion.  A call completed twice is a duplicate, one never completed is lost.
    """

    def __init__(self, capacity):
        self._completions = bytearray(capacity)
        self._lock = threading.Condition()
        self._sent = 0
        self._completed = 0
        self.categories = dict((category, 0) for category in CATEGORIES)
        self.samples = []   # a few unexpected results, for the failure message

    def register(self):
        with self._lock:
            number = self._sent
            self._sent += 1
            return number

    def complete(self, number, category, result=None):
        with self._lock:
            seen = self._completions[number]
            if seen < 255:
                self._completions[number] = seen + 1
            if seen == 0:
                self._completed += 1
                self.categories[category] += 1
                self._lock.notify_all()
            if category not in ('answered', 'timed_out') and len(self.samples) < 5:
                self.samples.append((number, result))

    def wait_all(self, timeout):
        deadline = time.time() + timeout
        with self._lock:
            while self._completed < self._sent:
                remaining = deadline - time.time()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.5))
            return True

    def counts(self):
        with self._lock:
            done = self._completions[:self._sent]
            counts = dict(self.categories)
            counts['sent'] = self._sent
            counts['lost'] = done.count(b'\x00')
            counts['duplicates'] = self._sent - counts['lost'] - done.count(b'\x01')
            counts['raised'] = 0
            return counts


# -- the report the docs show ---------------------------------------------------------------

def write_report_line(record):
    """Append ``record`` as one JSON line to the file named by ``TOTO_FAULT_REPORT``."""
    path = os.environ.get('TOTO_FAULT_REPORT')
    if not path:
        return
    line = json.dumps(record, sort_keys=True)
    with io.open(path, 'a', encoding='utf-8') as stream:
        stream.write(u'%s\n' % line)


# -- logging --------------------------------------------------------------------------------

#: Loggers where an exception escaping into an IOLoop (or a toto thread) is reported.
WATCHED_LOGGERS = ('toto', 'tornado.application', 'tornado.general', 'asyncio')


class ErrorCapture(logging.Handler):
    """Collects records at ERROR and above from :data:`WATCHED_LOGGERS` while installed."""

    def __init__(self, names=WATCHED_LOGGERS, level=logging.ERROR):
        logging.Handler.__init__(self, level)
        self.names = names
        self.records = []
        self._saved = {}

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        for name in self.names:
            logger = logging.getLogger(name)
            self._saved[name] = logger.level
            if logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc_info):
        for name in self.names:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._saved[name])

    def messages(self):
        return ['%s: %s' % (record.name, record.getMessage()) for record in self.records]


# -- processes ------------------------------------------------------------------------------

def child_env(extra=None):
    """The environment for a child: the faults and tests folders, then this toto."""
    import toto
    root = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))
    env = dict(os.environ)
    paths = [FAULTS_DIR, TESTS_DIR, root]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.pop('TOTO_FAULT_PARK', None)
    if extra:
        env.update(extra)
    return env


def _group_members(pgid):
    """Pids of the live (not zombie) processes in process group ``pgid``."""
    members = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except (IOError, OSError):
            continue
        if fields[0] != 'Z' and int(fields[2]) == pgid:
            members.append(int(name))
    return members


# A watchdog process for the whole test session: it is told the process group of every
# process the labs start (and forget) on its standard input, and kills the groups it still
# knows when that input closes -- which happens when the test process dies without running
# its fixtures' clean-up (a crash, a hard timeout), so no service outlives the tests.
_REAPER_CODE = """
import os, signal, sys
groups = set()
for line in iter(sys.stdin.readline, ''):
    word = line.strip()
    if word.startswith('-'):
        groups.discard(int(word[1:]))
    elif word:
        groups.add(int(word))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""
_reaper = []
_reaper_lock = threading.Lock()


def _tell_reaper(line):
    with _reaper_lock:
        if not _reaper:
            if sys.version_info[0] >= 3:
                session = {'start_new_session': True}
            else:
                session = {'preexec_fn': os.setsid}
            with open(os.devnull, 'wb') as devnull:
                _reaper.append(subprocess.Popen(
                    [sys.executable, '-c', _REAPER_CODE], stdin=subprocess.PIPE,
                    stdout=devnull, stderr=devnull, close_fds=True, **session))
        stream = _reaper[0].stdin
        stream.write(('%s\n' % line).encode('ascii'))
        stream.flush()


class Process(object):
    """A child process leading a session (and process group) of its own."""

    def __init__(self, name, argv, env, log_path, cwd):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        if sys.version_info[0] >= 3:
            session = {'start_new_session': True}
        else:
            session = {'preexec_fn': os.setsid}
        with open(log_path, 'ab') as log, open(os.devnull, 'rb') as devnull:
            self.process = subprocess.Popen(argv, stdin=devnull, stdout=log,
                                            stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                            close_fds=True, **session)
        _tell_reaper(self.process.pid)

    @property
    def pid(self):
        return self.process.pid

    def output(self):
        return read_text(self.log_path)

    def describe(self):
        return '--- %s (%s) log:\n%s' % (self.name, ' '.join(self.argv[1:]), self.output())

    def is_running(self):
        return self.process.poll() is None

    def members(self):
        """The live processes of this process's group (router and workers included)."""
        return _group_members(self.pid)

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the whole process group."""
        try:
            os.killpg(self.pid, sig)
        except OSError as error:
            if error.errno not in (errno.ESRCH, errno.EPERM):
                raise

    def end(self, sig=signal.SIGKILL, timeout=10.0):
        """Signal the group and wait until none of its processes is left alive."""
        self.kill(sig)
        self.wait_ended(timeout, 'after %s' % sig)

    def wait_ended(self, timeout, why=''):
        """Wait until none of the group's processes is left alive; return the exit status."""
        wait_until(lambda: self.process.poll() is not None and not self.members(), timeout,
                   message=lambda: '%s still running %s\n%s' % (
                       self.name, why, self.describe()))
        _tell_reaper(-self.process.pid)
        return self.process.returncode


class Service(Process):
    """A worker service process; ``address`` is where clients call it."""

    def __init__(self, name, argv, env, log_path, cwd, address, kind):
        Process.__init__(self, name, argv, env, log_path, cwd)
        self.address = address
        self.kind = kind
        # The service's own control socket (zmq services the lab names it for).
        self.control_address = None


class FaultLab(object):
    """The processes, clients and sockets of one test, all ended by :meth:`close`."""

    def __init__(self, directory):
        self.directory = directory
        # ipc:// paths must stay short (AF_UNIX), whatever pytest's tmp path is.
        self.socket_directory = tempfile.mkdtemp(prefix='toto-faults-')
        self.processes = []
        self.connections = []
        self._sockets = []
        self._context = None
        self._loop_thread = None
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

    def ipc(self, name):
        return 'ipc://' + os.path.join(self.socket_directory, name + '.sock')

    def logs(self):
        return '\n'.join(process.describe() for process in self.processes)

    # -- services -----------------------------------------------------------------------

    def zmq_service(self, processes=1, port=None, bind=None, args=(), env=None, wait=True,
                    probe=None, default_sockets=False):
        """Start a TotoWorkerService on ``127.0.0.1:port`` (a free port by default).

        ``bind`` overrides the bind address (``tcp://*:PORT``).  With ``wait``, returns
        once a call is answered; ``probe`` gives the probing connection's keyword
        arguments (codec, ``curve=(server, public, secret)``).  The worker and control
        sockets are files of the lab's own unless ``default_sockets``.
        """
        name = self._name('zmq')
        port = port or free_port()
        address = 'tcp://127.0.0.1:%d' % port
        argv = [sys.executable, SERVICE_SCRIPT, 'zmq',
                '--method_module=' + METHOD_MODULE,
                '--processes=%d' % processes,
                '--worker_bind_address=' + (bind or address)]
        if not default_sockets:
            argv += ['--worker_socket_address=' + self.ipc(name + '-w'),
                     '--control_socket_address=' + self.ipc(name + '-c')]
        argv += list(args)
        argv += dispatch_args(args)
        service = Service(name, argv, child_env(env), self.path(name + '.log'),
                          self.directory, address, 'zmq')
        if not default_sockets:
            service.control_address = self.ipc(name + '-c')
        self.processes.append(service)
        service.first_answer = None
        if wait:
            service.first_answer = self.wait_zmq_ready(service, **(probe or {}))
        return service

    def wait_zmq_ready(self, service, timeout=START_TIMEOUT, curve=None, **kwargs):
        """Call ``pid`` with short timeouts until the service answers; return the answer."""
        from toto.zmqworkerconnection import ZMQWorkerConnection
        probe = ZMQWorkerConnection(service.address, timeout=0.3, **kwargs)
        try:
            if curve:
                probe.enable_curve(*curve)
            deadline = time.time() + timeout
            while True:
                result = probe.invoke('pid', {}, **{'await': True}).result(5)
                if isinstance(result, dict) and 'pid' in result:
                    return result
                if time.time() > deadline or not service.is_running():
                    raise AssertionError('%s never answered (last %r)\n%s'
                                         % (service.name, result, service.describe()))
        finally:
            probe.close()

    def http_service(self, processes=1, port=None, host='127.0.0.1', args=(), env=None,
                     wait=True, https=False, probe=None, hostname='127.0.0.1'):
        """Start a TotoHTTPWorkerService on a free port; wait until it answers.

        ``hostname`` is the host part of its ``address``; ``probe`` gives the probing
        HTTPWorkerConnection's keyword arguments (codec).
        """
        name = self._name('http')
        port = port or free_port()
        scheme = 'https' if https else 'http'
        address = '%s://%s:%d/' % (scheme, hostname, port)
        argv = [sys.executable, SERVICE_SCRIPT, 'http',
                '--method_module=' + METHOD_MODULE,
                '--processes=%d' % processes,
                '--http_worker_host=' + host,
                '--http_worker_port=%d' % port] + list(args)
        service = Service(name, argv, child_env(env), self.path(name + '.log'),
                          self.directory, address, 'http')
        self.processes.append(service)
        service.first_answer = None
        if wait:
            service.first_answer = self.wait_http_ready(service, **(probe or {}))
        return service

    def wait_http_ready(self, service, timeout=START_TIMEOUT, **kwargs):
        from toto.httpworkerconnection import HTTPWorkerConnection
        probe = HTTPWorkerConnection(service.address, timeout=0.5, **kwargs)
        probe.configure_tls(validate_cert=False)
        deadline = time.time() + timeout
        while True:
            try:
                result = self.http(lambda: probe.invoke('pid', {}))
            except Exception as error:  # not listening yet: try again
                result = error
            if isinstance(result, dict) and 'pid' in result:
                return result
            if time.time() > deadline or not service.is_running():
                raise AssertionError('%s never answered (last %r)\n%s'
                                     % (service.name, result, service.describe()))
            time.sleep(0.05)  # polling interval while the service starts

    def raw_worker(self, mode):
        """Start ``rawworker.py mode``; its ``address`` is read from its READY line."""
        return self._worker_process('raw', [RAW_WORKER_SCRIPT, mode])

    def test_worker(self, *args):
        """Start ``tests/zmqworker.py --quiet args``: a ROUTER, a queue device and REP
        threads, all with ZeroMQ's default queues, as the original worker service."""
        return self._worker_process('testworker', [TEST_WORKER_SCRIPT, '--quiet',
                                                   '--until-killed'] + list(args))

    def _worker_process(self, prefix, argv):
        name = self._name(prefix)
        process = Process(name, [sys.executable] + argv, child_env(),
                          self.path(name + '.log'), self.directory)
        self.processes.append(process)

        def ready():
            match = re.search(r'READY (\S+)', process.output())
            if match is None and not process.is_running():
                raise AssertionError(process.describe())
            return match
        process.address = wait_until(ready, START_TIMEOUT,
                                     message=lambda: '%s did not start' % name).group(1)
        return process

    def burst_client(self, address, count, style, timeout):
        """Start ``burstclient.py``: one client process sending a burst of calls."""
        name = self._name('burst')
        argv = [sys.executable, BURST_CLIENT_SCRIPT, address, str(count), style,
                str(timeout)]
        process = Process(name, argv, child_env(), self.path(name + '.log'), self.directory)
        self.processes.append(process)
        return process

    def restart(self, service, sig=signal.SIGKILL, **kwargs):
        """End ``service`` with ``sig`` and start the same kind again on the same address."""
        service.end(sig)
        port = int(service.address.rsplit(':', 1)[1].split('/')[0])
        if service.kind == 'zmq':
            return self.zmq_service(port=port, **kwargs)
        return self.http_service(port=port, **kwargs)

    # -- clients --------------------------------------------------------------------------

    def connect(self, address, curve=None, **kwargs):
        """A ZMQWorkerConnection closed with the lab."""
        from toto.zmqworkerconnection import ZMQWorkerConnection
        connection = ZMQWorkerConnection(address, **kwargs)
        self.connections.append(connection)
        if curve:
            connection.enable_curve(*curve)
        return connection

    def raw_dealer(self, address):
        """A bare pyzmq DEALER connected to ``address``, closed with the lab."""
        import zmq
        if self._context is None:
            self._context = zmq.Context()
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(address)
        self._sockets.append(dealer)
        return dealer

    @property
    def loop_thread(self):
        """A thread running an IOLoop, for HTTP calls (which run on a loop)."""
        if self._loop_thread is None:
            self._loop_thread = LoopThread(name='faults-http-loop')
        return self._loop_thread

    def http(self, function, timeout=30.0):
        """Run ``function`` on the lab's IOLoop thread; return its (Future's) result."""
        return self.loop_thread.run(function, timeout)

    # -- the end --------------------------------------------------------------------------

    def close(self):
        """End the processes, clients and sockets; every step runs even if one fails."""
        errors = []

        def attempt(step, *args):
            try:
                step(*args)
            except Exception as error:  # keep ending the rest
                errors.append(error)
        for connection in self.connections:
            attempt(connection.close)
        for raw in self._sockets:
            attempt(raw.close, 0)
        if self._context is not None:
            attempt(self._context.term)
        if self._loop_thread is not None:
            def close_http_client():
                from tornado.httpclient import AsyncHTTPClient
                AsyncHTTPClient().close()
            attempt(self._loop_thread.run, close_http_client)
            attempt(self._loop_thread.stop)
        for process in reversed(self.processes):
            attempt(process.end, signal.SIGKILL)
        shutil.rmtree(self.socket_directory, ignore_errors=True)
        if errors:
            raise errors[0]


# -- raw wire -------------------------------------------------------------------------------

def pickled_call(method, parameters):
    """A request payload as the default (pickle protocol 2) client encodes it."""
    return pickle.dumps({'method': method, 'parameters': parameters}, 2)


def raw_request(dealer, frames, timeout=5.0):
    """Send ``frames`` on a raw DEALER; return the answer frames or None if none came."""
    dealer.send_multipart(frames)
    if not dealer.poll(timeout * 1000):
        return None
    return dealer.recv_multipart()


# -- a TCP relay that keeps what it carried -------------------------------------------------

class Relay(object):
    """Forwards connections from ``address`` (a free loopback port) to ``target_port``,
    keeping a copy of every byte that went through in either direction."""

    def __init__(self, target_port):
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.address = 'tcp://127.0.0.1:%d' % self.port
        self._captured = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._spawn(self._accept)

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, name='faults-relay')
        thread.daemon = True
        self._threads.append(thread)
        thread.start()

    def _accept(self):
        while not self._stop.is_set():
            readable = select.select([self._listener], [], [], 0.05)[0]
            if not readable:
                continue
            client = self._listener.accept()[0]
            upstream = socket.create_connection(('127.0.0.1', self.target_port))
            self._spawn(self._pump, client, upstream)

    def _pump(self, client, upstream):
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                for source in select.select(list(peers), [], [], 0.05)[0]:
                    data = source.recv(65536)
                    if not data:
                        return
                    with self._lock:
                        self._captured.extend(data)
                    peers[source].sendall(data)
        except socket.error:
            return  # one side went away: the relay connection ends like a real one
        finally:
            client.close()
            upstream.close()

    def captured(self):
        with self._lock:
            return bytes(self._captured)

    def close(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self._listener.close()


# -- certificates ---------------------------------------------------------------------------

def make_self_signed_certificate(directory):
    """Write a self-signed certificate for 127.0.0.1/localhost; return (cert, key) paths.

    Uses the ``cryptography`` package when it is installed, else the ``openssl`` command;
    returns None when neither is available.
    """
    cert_path = os.path.join(directory, 'worker-cert.pem')
    key_path = os.path.join(directory, 'worker-key.pem')
    try:
        _certificate_with_cryptography(cert_path, key_path)
        return cert_path, key_path
    except ImportError:
        pass
    openssl = _which('openssl')
    if openssl is None:
        return None
    subprocess.check_call(
        [openssl, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
         '-nodes', '-keyout', key_path, '-out', cert_path, '-days', '2',
         '-subj', '/CN=toto-faults-test',
         '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
         '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
         '-addext', 'extendedKeyUsage=serverAuth'],
        stdout=open(os.devnull, 'wb'), stderr=subprocess.STDOUT)
    return cert_path, key_path


def _which(program):
    for folder in os.environ.get('PATH', '').split(os.pathsep):
        candidate = os.path.join(folder, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _certificate_with_cryptography(cert_path, key_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'toto-faults-test')])
    now = datetime.datetime.utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(u'127.0.0.1')), x509.DNSName(u'localhost')]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    with open(key_path, 'wb') as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    with open(cert_path, 'wb') as stream:
        stream.write(certificate.public_bytes(serialization.Encoding.PEM))


def zmq_call(connection, method, parameters=None, timeout=2.0):
    """One call through a ZMQWorkerConnection, waited for from a thread with no loop."""
    return workerproc.call(connection, method, parameters, timeout)


def pids_answering(connection, count, timeout=START_TIMEOUT):
    """Call ``pid`` until ``count`` different worker processes answered; return the pids."""
    return set(workerproc.pids_answering(connection, count, timeout))


def wait_for_file(path, timeout=10.0):
    """Wait until a worker method wrote ``path``; return its text."""
    wait_until(lambda: os.path.exists(path), timeout, message=lambda: '%s never appeared' % path)
    return read_text(path)
