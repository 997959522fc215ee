"""The example application in examples/, run end to end as a user would run it.

Each test starts ``examples/worker.py`` (a TotoWorkerService for
``examples/methods``) and a web application as separate processes, on free
loopback ports, then makes HTTP requests to the web application, which calls
the workers through ``WorkerConnection.instance()``:

* on Python 3 the web application is ``webapp_py3.py`` (``async def`` and
  ``await_=True``); on Python 2.7 it is ``webapp_py2.py`` (``gen.coroutine``
  and ``await=True``), each under the interpreter running the tests;
* on Python 3, when ``TOTO_PYTHON2`` names a Python 2.7 (tox sets it), the
  unchanged ``webapp_py2.py`` also runs under that interpreter against the
  Python 3 worker service;
* on Python 3, ``webapp_py2.py`` also runs with nothing changed but its
  ``await=True`` spelling (the claim of docs/migration.rst), and
  ``client.py`` makes its three calls;
* the same application also runs over HTTP (``--worker_transport=http``
  against ``toto-worker --transport=http``) and with msgpack as the
  serialization module on both ends (the ``msgpack`` extra).

Every process is started in a session of its own and ended, with whatever it
started, when its test ends.
"""

from __future__ import print_function

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from six.moves.urllib.error import HTTPError, URLError
from six.moves.urllib.request import ProxyHandler, build_opener
from support import free_port

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
EXAMPLES_DIR = os.path.join(REPO_ROOT, 'examples')
WORKER_SCRIPT = os.path.join(EXAMPLES_DIR, 'worker.py')
PY2 = sys.version_info[0] == 2

#: How long the worker service and the web application may take to answer.
START_TIMEOUT = 30.0
#: How long a process may take to exit once asked to.
STOP_TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(not os.path.isfile(WORKER_SCRIPT),
                                reason='examples/ is not beside tests/')

# Never send requests for 127.0.0.1 to a proxy named in the environment.
_opener = build_opener(ProxyHandler({}))


# -- processes ----------------------------------------------------------------------

def _child_env(python):
    """The environment for a child: toto as this test run sees it."""
    env = dict(os.environ)
    if python == sys.executable or python == toto_worker_script():
        import toto
        roots = [os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))]
    elif os.path.isdir(os.path.join(REPO_ROOT, 'toto')):
        roots = [REPO_ROOT]  # another interpreter: the checkout's toto, as other tests do
    else:
        roots = []  # tests copied without the package: the interpreter's own toto
    roots.append(EXAMPLES_DIR)  # the methods package, for toto-worker
    if env.get('PYTHONPATH'):
        roots.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(roots)
    env['PYTHONUNBUFFERED'] = '1'
    return env


class Program(object):
    """A script run in a session of its own, its output kept in a log file."""

    def __init__(self, name, argv, directory):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(directory, name + '.log')
        session = {'preexec_fn': os.setsid} if PY2 else {'start_new_session': True}
        with open(self.log_path, 'ab') as log, open(os.devnull, 'rb') as devnull:
            self.process = subprocess.Popen(argv, stdin=devnull, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=directory,
                                            env=_child_env(argv[0]), close_fds=True,
                                            **session)

    def running(self):
        return self.process.poll() is None

    def output(self):
        with io.open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def describe(self):
        return '--- %s (%s) exit %s, log:\n%s' % (
            self.name, ' '.join(self.argv), self.process.poll(), self.output())

    def end(self):
        """SIGTERM, a bounded wait, then SIGKILL to whatever is left of the session."""
        if self.running():
            try:
                self.process.send_signal(signal.SIGTERM)
            except OSError:
                pass
            deadline = time.time() + STOP_TIMEOUT
            while self.running() and time.time() < deadline:
                time.sleep(0.05)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # it leads its own group
        except OSError as error:
            if error.errno not in (errno.ESRCH, errno.EPERM):
                raise
        if self.running():
            self.process.kill()
        self.process.wait()


class Lab(object):
    """The programs of one test, in one directory, all ended on exit."""

    def __init__(self, directory):
        self.directory = directory
        # ipc:// paths must fit in an AF_UNIX address: keep them short.
        self.socket_directory = tempfile.mkdtemp(prefix='toto-ex-')
        self.programs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for program in reversed(self.programs):
            program.end()
        shutil.rmtree(self.socket_directory, ignore_errors=True)

    def start(self, name, argv):
        program = Program(name, argv, self.directory)
        self.programs.append(program)
        return program

    def logs(self):
        return '\n'.join(program.describe() for program in self.programs)

    def start_worker(self, transport='zmq', serialization=None):
        """The example's methods served as worker.conf says, on this test's addresses.

        zmq: ``worker.py``; http: ``toto-worker --transport=http`` (which
        reads no conf file), with the methods found through PYTHONPATH.
        """
        self.transport = transport
        self.visits_file = os.path.join(self.directory, 'visits.log')
        port = free_port()
        if transport == 'zmq':
            self.worker_address = 'tcp://127.0.0.1:%d' % port
            argv = [sys.executable, WORKER_SCRIPT,
                    '--worker_bind_address=' + self.worker_address,
                    '--worker_socket_address=ipc://' + self._socket('w'),
                    '--control_socket_address=ipc://' + self._socket('c'),
                    '--visits_file=' + self.visits_file]
        else:
            self.worker_address = 'http://127.0.0.1:%d/' % port
            argv = [toto_worker_script(), '--transport=http', '--method_module=methods',
                    '--processes=2', '--http_worker_port=%d' % port]
        if serialization:
            argv.append('--serialization_module=' + serialization)
        return self.start('worker', argv)

    def _socket(self, name):
        return os.path.join(self.socket_directory, name + '.sock')

    def start_webapp(self, python, script, serialization=None):
        """A web application with webapp.conf, pointed at this test's worker service."""
        port = free_port()
        argv = [python, os.path.join(EXAMPLES_DIR, script),  # (a full path stays one)
                '--port=%d' % port,
                '--worker_transport=' + self.transport,
                '--worker_address=' + self.worker_address]
        if serialization:
            argv.append('--worker_serialization_module=' + serialization)
        program = self.start('webapp', argv)
        program.url = 'http://127.0.0.1:%d' % port
        return program


# -- HTTP ---------------------------------------------------------------------------

def get(url, timeout=15.0):
    """GET ``url``: (status, JSON body), or (None, reason) when nothing answered."""
    try:
        response = _opener.open(url, timeout=timeout)
    except HTTPError as error:
        status, body = error.code, error.read()
    except (URLError, IOError) as error:  # refused, reset: not listening yet
        return None, str(error)
    else:
        status, body = response.getcode(), response.read()
    try:
        return status, json.loads(body.decode('utf-8'))
    except ValueError:
        return status, body


def wait_for(lab, url, accept, timeout=START_TIMEOUT):
    """GET ``url`` until ``accept(status, body)``; fail with every log if it never does."""
    deadline = time.time() + timeout
    status = body = None
    while time.time() < deadline and all(p.running() for p in lab.programs):
        status, body = get(url)
        if accept(status, body):
            return body
        time.sleep(0.1)
    raise AssertionError('no acceptable answer from %s within %.0f s (last: %r %r)\n%s'
                         % (url, timeout, status, body, lab.logs()))


# -- interpreters -------------------------------------------------------------------

def python2_interpreter():
    """TOTO_PYTHON2, checked to run the web application's imports; skip without it."""
    path = os.environ.get('TOTO_PYTHON2')
    if not path or not os.path.isfile(path):
        message = 'TOTO_PYTHON2 is %s: it must name a Python 2.7 with toto installed ' \
                  'or its dependencies' % ('%r, not a file' % path if path else 'not set')
        if os.environ.get('CI'):
            pytest.fail(message + ' (CI is set, so this test may not be skipped)')
        pytest.skip(message)
    check = subprocess.Popen(
        [path, '-c', 'import sys, toto.workerconnection; print(sys.version_info[0])'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_child_env(path))
    output = check.communicate()[0].decode('utf-8', 'replace')
    assert check.returncode == 0, 'TOTO_PYTHON2=%s cannot import toto:\n%s' % (path, output)
    assert output.split()[-1] == '2', 'TOTO_PYTHON2=%s is not Python 2: %s' % (path, output)
    return path


def toto_worker_script():
    """The toto-worker console script installed beside this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), 'toto-worker')


def has_msgpack():
    try:
        import msgpack  # noqa: F401
    except ImportError:
        return False
    return True


NATIVE_WEBAPP = 'webapp_py2.py' if PY2 else 'webapp_py3.py'
# (web application, runs on TOTO_PYTHON2, transport, serialization module)
VARIANTS = [pytest.param(NATIVE_WEBAPP, False, 'zmq', None, id=NATIVE_WEBAPP[:-3])]
if not PY2:
    VARIANTS.append(pytest.param('webapp_py2.py', True, 'zmq', None,
                                 id='webapp_py2-on-TOTO_PYTHON2'))
VARIANTS += [
    pytest.param(NATIVE_WEBAPP, False, 'http', None, id=NATIVE_WEBAPP[:-3] + '-http'),
    # Python 2 packs str as binary, so msgpack peers must run the same Python.
    pytest.param(NATIVE_WEBAPP, False, 'zmq', 'msgpack', id=NATIVE_WEBAPP[:-3] + '-msgpack'),
]


# -- tests --------------------------------------------------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize('script,on_python2,transport,serialization', VARIANTS)
def test_web_application_calls_the_example_workers(tmp_path, script, on_python2, transport,
                                                    serialization):
    python = python2_interpreter() if on_python2 else sys.executable
    if transport == 'http' and not os.path.isfile(toto_worker_script()):
        pytest.skip('toto-worker is not installed beside %s' % sys.executable)
    if serialization == 'msgpack' and not has_msgpack():
        pytest.skip('msgpack is not installed (the msgpack or test extra)')
    with Lab(str(tmp_path)) as lab:
        lab.start_worker(transport, serialization)
        webapp = lab.start_webapp(python, script, serialization)
        # Up once both the web application and a worker answer.
        assert wait_for(lab, webapp.url + '/visits',
                        lambda status, body: status == 200) == {'visits': 0}

        assert get(webapp.url + '/hello?name=Ada') == (200, {'greeting': 'Hello, Ada!'})
        # Text that is not ASCII crosses both hops (and Python 2 <-> 3) as text.
        assert get(webapp.url + '/hello?name=J%C3%A9r%C3%B4me') == \
            (200, {'greeting': u'Hello, J\xe9r\xf4me!'})
        # The method's TotoException arrives as an error answer: 400 here.
        assert get(webapp.url + '/hello') == \
            (400, {'error': {'code': 1003, 'value': 'name is required'}})

        # visits.record is asynchronous: acknowledged at once, written soon after.
        wait_for(lab, webapp.url + '/visits',
                 lambda status, body: body == {'visits': 2}, timeout=10.0)
        with io.open(lab.visits_file, encoding='utf-8') as visits:
            assert sorted(visits.read().split()) == [u'Ada', u'J\xe9r\xf4me']
        assert all(program.running() for program in lab.programs), lab.logs()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('script,groups', [
    ('worker.py', ['worker service options', 'service options',
                   'example application options']),
    ('webapp_py2.py' if PY2 else 'webapp_py3.py',
     ['worker connection options', 'example web application options']),
])
def test_help_lists_the_options_in_their_groups(tmp_path, script, groups):
    process = subprocess.Popen([sys.executable, os.path.join(EXAMPLES_DIR, script), '--help'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=str(tmp_path), env=_child_env(sys.executable))
    output = process.communicate()[0].decode('utf-8', 'replace')
    assert process.returncode == 0, output
    for group in groups:
        assert '\n%s:\n' % group in output, (group, output)


def respell_await(source):
    """The Python 3 spelling of a Python 2 file's ``await=True`` keyword arguments."""
    return source.replace('await=True', "**{'await': True}")


@pytest.mark.skipif(PY2, reason='the Python 3 side of the migration')
@pytest.mark.timeout(120)
def test_python2_web_application_runs_on_python3_with_only_await_respelled(tmp_path):
    with io.open(os.path.join(EXAMPLES_DIR, 'webapp_py2.py'), encoding='utf-8') as source:
        python2_source = source.read()
    python3_source = respell_await(python2_source)
    changed = [(old, new) for old, new in zip(python2_source.splitlines(),
                                              python3_source.splitlines()) if old != new]
    assert changed and all('await=True' in old for old, new in changed), changed
    # Beside a copy of its conf file, as webapp_py2.py sits beside webapp.conf.
    program_dir = tmp_path / 'app'
    program_dir.mkdir()
    with io.open(str(program_dir / 'webapp.py'), 'w', encoding='utf-8') as program:
        program.write(python3_source)
    shutil.copy(os.path.join(EXAMPLES_DIR, 'webapp.conf'), str(program_dir))

    with Lab(str(tmp_path)) as lab:
        lab.start_worker()
        webapp = lab.start_webapp(sys.executable, str(program_dir / 'webapp.py'))
        assert wait_for(lab, webapp.url + '/visits',
                        lambda status, body: status == 200) == {'visits': 0}
        assert get(webapp.url + '/hello?name=Ada') == (200, {'greeting': 'Hello, Ada!'})
        assert get(webapp.url + '/hello')[0] == 400
        wait_for(lab, webapp.url + '/visits',
                 lambda status, body: body == {'visits': 1}, timeout=10.0)


@pytest.mark.skipif(PY2, reason='client.py is the Python 3 client')
@pytest.mark.timeout(120)
def test_client_calls_greet_three_ways(tmp_path):
    with Lab(str(tmp_path)) as lab:
        lab.start_worker()
        client = lab.start('client', [sys.executable, os.path.join(EXAMPLES_DIR, 'client.py'),
                                      '--worker_address=' + lab.worker_address,
                                      '--worker_timeout=20', 'Ada'])
        deadline = time.time() + START_TIMEOUT
        while client.running() and time.time() < deadline:
            time.sleep(0.05)
        assert client.process.poll() == 0, lab.logs()
        lines = client.output().splitlines()
        answer = "{'greeting': 'Hello, Ada!'}"
        assert lines == ['callback: ' + answer, 'yield:    ' + answer,
                         'await:    ' + answer], lab.logs()
