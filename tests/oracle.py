"""Differential tests: the same Toto app under the original Toto 1.0.12 and under this package.

The original (the *oracle*) is ``toto==1.0.12`` from PyPI in a Python 2.7 virtualenv with
tornado 4.5.3 and pyzmq 16.0.4, named by the environment variable ``TOTO_ORACLE_PYTHON``
(``.ci/run`` installs it and tox passes the variable on).  A :class:`Pair` runs one worker
service script (``oracle_apps/run_service.py``: ``TotoWorkerService(conf_file).run()``)
twice, with the same method package, conf file and command line: once under the oracle's
interpreter, once under this interpreter with this package.  It sends both the same calls
through this package's ``ZMQWorkerConnection`` (it speaks the original's protocol) and
compares the answers -- values, error codes and messages -- and the files each side
stored.  A difference fails the test unless ``oracle_differences.py`` lists it for that
case, with its reason::

    import oracle

    def test_echo(tmp_path):
        with oracle.Pair(str(tmp_path)) as pair:
            pair.start('worker_app', conf={'database': 'json',
                                           'db_host': oracle.SideFile('db.json', '{}'),
                                           'db_port': 1})
            pair.compare('echo.values', 'echo', {'text': 'tea', 'cups': 2})
            pair.compare_stored('json-db.empty', 'db.json')

``Pair(directory, against='original')`` runs the oracle against itself, with no accepted
differences: it checks that the masks of a case hide everything random (ids, hashes,
times) and nothing else.

Without ``TOTO_ORACLE_PYTHON`` the tests skip, except under CI (``CI`` set), where a
missing oracle fails them.  Every process runs in a session of its own and is killed
with its whole process group when the pair closes (or, should the test process die,
by the fault kit's reaper).  Nothing here depends on how fast either side is: waits are
bounded but generous, and no test asserts on time.
"""

from __future__ import print_function

import copy
import datetime
import decimal
import json
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid

import pytest

from support import free_port, wait_until

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(TESTS_DIR, 'oracle_apps')
RUN_SERVICE = os.path.join(APPS_DIR, 'run_service.py')
EVENT_PEER = os.path.join(APPS_DIR, 'event_peer.py')
KWARGS_VARIABLE = 'TOTO_ORACLE_SERVICE_KWARGS'
ORACLE_VARIABLE = 'TOTO_ORACLE_PYTHON'

# The fault kit's processes: a session (and process group) of their own, killed as a
# group, and handed to a reaper that kills them should this process die first.
_FAULTS_DIR = os.path.join(TESTS_DIR, 'faults')
if _FAULTS_DIR not in sys.path:
    sys.path.append(_FAULTS_DIR)
from faultkit import Process  # noqa: E402

#: How long a service may take to answer its first call (a loaded CI machine, two
#: suites at once, a Python 2.7 importing tornado 4 from a cold disk).
START_TIMEOUT = 45.0
#: The timeout of each compared call.  Generous: only a hung side should reach it.
CALL_TIMEOUT = 20.0
#: A method no app has: any answer to it (an error) shows the service takes calls.
PROBE_METHOD = 'oracle_kit_probe'
TIMEOUT_ANSWER = {'error': 'timeout'}

ORIGINAL = 'original'
COMPAT = 'compat'
_SIDE_TITLES = {ORIGINAL: 'Toto 1.0.12', COMPAT: 'this package'}


def oracle_python():
    """The oracle's interpreter; skips the test without one (fails it under CI)."""
    python = os.environ.get(ORACLE_VARIABLE)
    if not python:
        message = ('%s is not set: no original Toto 1.0.12 to compare with '
                   '(bash .ci/run installs one)' % ORACLE_VARIABLE)
        if os.environ.get('CI'):
            pytest.fail(message + '; CI must run the differential tests')
        pytest.skip(message)
    if not os.access(python, os.X_OK):
        pytest.fail('%s=%s is not an executable' % (ORACLE_VARIABLE, python))
    return python


# -- processes -------------------------------------------------------------------------------

def _compat_env():
    """This package for a child of this interpreter (a checkout or an installed wheel)."""
    import toto
    root = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))
    env = dict(os.environ)
    paths = [root]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.pop(KWARGS_VARIABLE, None)
    return env


def _oracle_env():
    """Nothing of this package for the oracle: its own site-packages only."""
    env = dict(os.environ)
    for name in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', KWARGS_VARIABLE):
        env.pop(name, None)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    # Python 2 as it runs by default, without hash randomization (tox sets a
    # random PYTHONHASHSEED): set and dict orders in 1.0.12's answers, such as
    # the names in "Missing parameters", are then those its users saw.
    env['PYTHONHASHSEED'] = '0'
    return env


class SideFile(object):
    """A file each side gets its own copy of, in its own folder.

    In a conf dict (or ``kwargs``) it stands for that copy's absolute path.  ``content``
    is text, or a function of the :class:`Side` that returns text.
    """

    def __init__(self, name, content=''):
        self.name = name
        self.content = content

    def write(self, side):
        content = self.content(side) if callable(self.content) else self.content
        path = side.path(self.name)
        with open(path, 'w') as stream:
            stream.write(content)
        return path


def _resolve(value, side):
    return value.write(side) if isinstance(value, SideFile) else value


def conf_text(conf):
    """A tornado conf file (Python syntax) setting ``conf``'s options, in sorted order.

    Text becomes a plain ASCII literal, a native ``str`` on both Pythons (tornado 4 on
    Python 2.7 refuses ``unicode`` for a str option).
    """
    lines = ['# written by tests/oracle.py for a differential test']
    for name in sorted(conf):
        lines.append('%s = %s' % (name, _literal(name, conf[name])))
    return '\n'.join(lines) + '\n'


def _literal(name, value):
    if isinstance(value, bytes):
        value = value.decode('ascii')
    if isinstance(value, type(u'')):
        if re.search(r'[^\x20-\x7e]', value):
            raise ValueError('conf values must be printable ASCII: %s=%r' % (name, value))
        return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join(_literal(name, item) for item in value)
    return repr(value)


class Side(object):
    """One side of a pair: the app under one package, in a folder of its own.

    ``role`` is ``'original'`` or ``'compat'``; ``kept`` holds the values a comparison
    kept by name (a session id, say), which later calls use and comparisons relabel.
    """

    def __init__(self, role, python, env, directory, socket_directory):
        self.role = role
        self.title = _SIDE_TITLES[role]
        self.python = python
        self.env = env
        self.directory = directory
        self.socket_directory = socket_directory
        self.kept = {}
        self.process = None
        self.address = None
        self._connection = None
        self._starts = 0
        if not os.path.isdir(directory):
            os.makedirs(directory)

    def __repr__(self):
        return '<Side %s in %s>' % (self.title, self.directory)

    def path(self, name):
        return os.path.join(self.directory, name)

    def read(self, name):
        with open(self.path(name)) as stream:
            return stream.read()

    def read_json(self, name):
        return json.loads(self.read(name))

    def describe(self):
        if self.process is None:
            return '--- %s: not started' % self.title
        return '--- %s: %s' % (self.title, self.process.describe())

    def start(self, conf=None, args=(), kwargs=None, port=None):
        """Start ``run_service.py`` with ``conf`` (a dict) and ``args``; do not wait.

        A service this side already runs is ended first; ``kept`` values are forgotten.
        """
        self.end()
        self.kept.clear()
        self._starts += 1
        name = 'service-%d' % self._starts
        conf_path = self.path(name + '.conf')
        options = dict((key, _resolve(value, self)) for key, value in (conf or {}).items())
        with open(conf_path, 'w') as stream:
            stream.write(conf_text(options))
        self.address = 'tcp://127.0.0.1:%d' % (port or free_port())
        sockets = os.path.join(self.socket_directory, '%s-%s' % (self.role, name))
        argv = [self.python, RUN_SERVICE, conf_path,
                '--worker_bind_address=' + self.address,
                '--worker_socket_address=ipc://%s-w.sock' % sockets,
                '--control_socket_address=ipc://%s-c.sock' % sockets] + list(args)
        env = dict(self.env)
        if kwargs:
            env[KWARGS_VARIABLE] = json.dumps(
                dict((key, _resolve(value, self)) for key, value in kwargs.items()))
        self.process = Process('%s %s' % (self.title, name), argv, env,
                               self.path(name + '.log'), self.directory)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Call :data:`PROBE_METHOD` until this side's service answers it.

        The apps' probe method answers the process group of the service, which
        the kit started as a group of its own: an answer from any other
        service on that port (one that took it first) does not count.  Apps
        without the probe method answer an error, which counts.
        """
        from toto.zmqworkerconnection import ZMQWorkerConnection
        probe = ZMQWorkerConnection(self.address, timeout=0.5)
        try:
            deadline = time.time() + timeout
            while True:
                answer = probe.invoke(PROBE_METHOD, {}, **{'await': True}).result(10)
                if answer != TIMEOUT_ANSWER and self._answered_by_this_side(answer):
                    return answer
                if not self.process.is_running():
                    raise AssertionError('%s exited before it answered a call\n%s'
                                         % (self.title, self.describe()))
                if time.time() > deadline:
                    raise AssertionError('%s answered no call within %.0f s\n%s'
                                         % (self.title, timeout, self.describe()))
        finally:
            probe.close()

    def _answered_by_this_side(self, answer):
        if isinstance(answer, dict) and 'process_group' in answer:
            return answer['process_group'] == self.process.pid
        return True

    @property
    def connection(self):
        if self._connection is None:
            from toto.zmqworkerconnection import ZMQWorkerConnection
            self._connection = ZMQWorkerConnection(self.address, timeout=CALL_TIMEOUT)
        return self._connection

    def call(self, method, parameters=None, timeout=CALL_TIMEOUT):
        """The answer to one call; a timeout fails the test with the service's log."""
        future = self.connection.invoke(method, {} if parameters is None else parameters,
                                        timeout=timeout, **{'await': True})
        # A call expires between timeout and twice that.
        answer = future.result(2 * timeout + 10)
        if answer == TIMEOUT_ANSWER:
            raise AssertionError('%s did not answer %s(%r) within %.0f s\n%s'
                                 % (self.title, method, parameters, timeout, self.describe()))
        return answer

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def end(self):
        self.close()
        if self.process is not None:
            self.process.end(signal.SIGKILL)


# -- comparing -------------------------------------------------------------------------------

_SESSION_ID = re.compile(r'^[A-Za-z0-9_-]{22}$')
_PBKDF2_HASH = re.compile(r'^\$p5k2\$\$[A-Za-z0-9./]{8}\$[A-Za-z0-9./]{32}$')
_DAY = 24 * 60 * 60.0


def _mask_expires(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return '<now + %d days>' % int(round((value - time.time()) / _DAY))
    return value


def _mask_password(value):
    if isinstance(value, (type(u''), str)) and _PBKDF2_HASH.match(value):
        return '<pbkdf2 $p5k2$ hash>'
    return value


def _mask_session_id(value):
    if isinstance(value, (type(u''), str)) and _SESSION_ID.match(value):
        return '<22-character session id>'
    return value


def _mask_state(value):
    # A session's state as the original stores it: a pickle (protocol 0) in a string.
    if not isinstance(value, (type(u''), bytes)):
        return value
    data = value.encode('latin-1') if isinstance(value, type(u'')) else value
    try:
        if sys.version_info[0] >= 3:
            loaded = pickle.loads(data, encoding='latin-1')
        else:
            loaded = pickle.loads(data)
    except Exception:  # not a pickle: compared as it is
        return value
    return {'<unpickled>': loaded}


#: Masks by key name: wherever a dict has that key, its value is replaced by what is
#: checked of it (a format, a distance from now), so random values compare equal.
MASKS = {
    'expires': _mask_expires,
    'password': _mask_password,
    'session_id': _mask_session_id,
    'state': _mask_state,
}


#: Types compared by value; objects of any other type compare by their class alone.
_VALUE_TYPES = (type(None), bool, int, float, complex, bytes, type(u''), set, frozenset,
                datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID)
if sys.version_info[0] < 3:
    _VALUE_TYPES += (long,)  # noqa: F821 - Python 2 only


def canonical(value, kept=None, mask=()):
    """``value`` made comparable across the two sides.

    Exceptions (what a client gives for an answer it could not decode) become
    ``{'<exception>': name, 'message': text}``, objects of types not compared by value
    ``{'<object>': 'module.Class'}``; strings equal to a kept value become
    ``'<kept:name>'`` (dict keys too); the values of keys named in ``mask`` go through
    :data:`MASKS`.  Text and ``bytes`` stay apart, lists and tuples too.
    """
    labels = dict((v, '<kept:%s>' % k) for k, v in (kept or {}).items()
                  if isinstance(v, (type(u''), bytes)))
    masks = dict((name, MASKS[name]) for name in mask)

    def walk(item):
        if isinstance(item, BaseException):
            return {'<exception>': type(item).__name__, 'message': str(item)}
        if isinstance(item, (type(u''), bytes)):
            return labels.get(item, item)
        if isinstance(item, dict):
            result = {}
            for key, sub in item.items():
                if key in masks:
                    sub = masks[key](labels.get(sub, sub) if _hashable(sub) else sub)
                result[walk(key)] = walk(sub)
            return result
        if isinstance(item, list):
            return [walk(sub) for sub in item]
        if isinstance(item, tuple):
            return tuple(walk(sub) for sub in item)
        if not isinstance(item, _VALUE_TYPES):
            # Equal only to itself (a Future, say): only its class can be compared.
            return {'<object>': '%s.%s' % (type(item).__module__, type(item).__name__)}
        return item
    return walk(value)


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


class Comparison(object):
    """What the two sides answered to one case, raw and made comparable."""

    def __init__(self, case, method, parameters, answers, canonical_answers):
        self.case = case
        self.method = method
        self.parameters = parameters
        #: ``{role: answer}`` as each side answered it.
        self.answers = answers
        #: ``{role: answer}`` after :func:`canonical`.
        self.canonical = canonical_answers
        #: The accepted difference (from oracle_differences.py), or None if equal.
        self.difference = None

    @property
    def original(self):
        return self.answers[ORIGINAL]

    @property
    def other(self):
        return self.answers[self._other_role]

    @property
    def _other_role(self):
        return [role for role in self.answers if role != ORIGINAL][0]

    def __repr__(self):
        return '<Comparison %s: %r>' % (self.case, self.answers)


def check(comparison, strict=False):
    """Pass if both sides' canonical answers are equal, or differ as the list accepts.

    ``strict`` accepts no listed difference (the oracle compared with itself).
    """
    from oracle_differences import DIFFERENCES
    original = comparison.canonical[ORIGINAL]
    other = comparison.canonical[comparison._other_role]
    if original == other:
        return comparison
    what = ('case %r: %s(%r)\n  Toto 1.0.12 answered:  %r\n  the other side answered: %r'
            % (comparison.case, comparison.method, comparison.parameters, original, other))
    if strict:
        raise AssertionError('the oracle differs from itself (a mask is missing?) in ' + what)
    entry = DIFFERENCES.get(comparison.case)
    if entry is None:
        raise AssertionError(
            'unlisted difference from Toto 1.0.12 in %s\nIf it is intended, list it under '
            '%r in tests/oracle_differences.py with its reason.' % (what, comparison.case))
    if not entry.accepts(original, other):
        raise AssertionError('the difference listed for %r (%s) does not accept %s'
                             % (comparison.case, entry.reason, what))
    comparison.difference = entry
    return comparison


class Pair(object):
    """The original Toto 1.0.12 and ``against`` running the same app, side by side.

    ``against`` is ``'compat'`` (this package, under this interpreter) or ``'original'``
    (the oracle again, to check the kit and the masks).
    """

    def __init__(self, directory, against=COMPAT):
        if against not in (COMPAT, ORIGINAL):
            raise ValueError('against must be %r or %r' % (COMPAT, ORIGINAL))
        python = oracle_python()
        self.directory = directory
        self.strict = against == ORIGINAL
        # ipc:// paths must stay short (AF_UNIX), whatever the test's tmp path is.
        self.socket_directory = tempfile.mkdtemp(prefix='toto-oracle-')
        self.original = Side(ORIGINAL, python, _oracle_env(),
                             os.path.join(directory, 'original'), self.socket_directory)
        if self.strict:
            self.other = Side(ORIGINAL, python, _oracle_env(),
                              os.path.join(directory, 'original-again'), self.socket_directory)
            self.other.role = 'original-again'
            self.other.title = 'Toto 1.0.12 (again)'
        else:
            self.other = Side(COMPAT, sys.executable, _compat_env(),
                              os.path.join(directory, 'compat'), self.socket_directory)
        self.sides = (self.original, self.other)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def logs(self):
        return '\n'.join(side.describe() for side in self.sides)

    def start(self, app, conf=None, args=(), kwargs=None, processes=1):
        """Start ``app`` on both sides and return once each answers a call.

        ``conf`` is written as each side's conf file, ``method_module=app`` and
        ``processes`` included (1.0.12 drops the first module option given on the
        command line, fact sheet 5: the conf file is where apps set it).  ``args`` follow
        the kit's own address options on the command line.
        """
        options = {'method_module': app, 'processes': processes}
        options.update(conf or {})
        # Distinct ports for the two sides: two free ports picked one after
        # the other can be the same one.
        ports = []
        for side in self.sides:
            port = free_port()
            while port in ports:
                port = free_port()
            ports.append(port)
            side.start(options, args, kwargs, port=port)
        for side in self.sides:
            side.wait_ready()
        return self

    def compare(self, case, method, parameters=None, keep=None, mask=(), timeout=CALL_TIMEOUT):
        """Call ``method`` on both sides and check the answers; return the Comparison.

        ``parameters`` is a dict (each side gets a copy) or a function of the
        :class:`Side` returning one (to send each side the ids it gave out).  ``keep``
        maps answer keys to names: each side keeps its own value under that name in
        ``side.kept``, and later comparisons show it as ``'<kept:name>'``.  ``mask``
        names the keys whose values go through :data:`MASKS`.
        """
        answers = {}
        sent = None
        for side in self.sides:
            if callable(parameters):
                sent = parameters(side)
            else:
                sent = copy.deepcopy(parameters) if parameters is not None else {}
            answers[side.role] = answer = side.call(method, sent, timeout)
            for key, name in (keep or {}).items():
                if isinstance(answer, dict) and key in answer:
                    side.kept[name] = answer[key]
        canonical_answers = dict((side.role, canonical(answers[side.role], side.kept, mask))
                                 for side in self.sides)
        comparison = Comparison(case, method, parameters if not callable(parameters) else sent,
                                answers, canonical_answers)
        return check(comparison, self.strict)

    def compare_stored(self, case, name, mask=()):
        """Compare the JSON file ``name`` that each side wrote in its folder."""
        stored = dict((side.role, side.read_json(name)) for side in self.sides)
        canonical_answers = dict((side.role, canonical(stored[side.role], side.kept, mask))
                                 for side in self.sides)
        return check(Comparison(case, 'stored ' + name, None, stored, canonical_answers),
                     self.strict)

    def close(self):
        errors = []
        for side in self.sides:
            try:
                side.end()
            except Exception as error:  # keep ending the rest
                errors.append(error)
        shutil.rmtree(self.socket_directory, ignore_errors=True)
        if errors:
            raise errors[0]


# -- events ---------------------------------------------------------------------------------

class EventPeers(object):
    """``event_peer.py`` processes under either package: listeners and senders of events."""

    def __init__(self, directory):
        self.directory = directory
        self.python = {ORIGINAL: oracle_python(), COMPAT: sys.executable}
        self.env = {ORIGINAL: _oracle_env(), COMPAT: _compat_env()}
        self.processes = []
        self._count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _start(self, role, name, args):
        process = Process('%s %s' % (_SIDE_TITLES[role], name),
                          [self.python[role], EVENT_PEER] + list(args), self.env[role],
                          os.path.join(self.directory, name + '.log'), self.directory)
        process.role = role
        self.processes.append(process)
        return process

    def listen(self, role):
        """Start a listener on a free loopback port; return it once it says it listens."""
        address = 'tcp://127.0.0.1:%d' % free_port()
        process = self._start(role, '%s-listener' % role, ['listen', address])
        wait_until(lambda: self._line(process, 'READY'), START_TIMEOUT,
                   message=lambda: '%s never got ready\n%s' % (process.name, process.describe()))
        process.address = address
        return process

    def send(self, role, addresses, events):
        """Start a sender that broadcasts each ``(name, args)`` of ``events`` to
        ``addresses`` (registered as its servers); it stays up until the peers close."""
        self._count += 1
        return self._start(role, '%s-sender-%d' % (role, self._count),
                           ['send', ','.join(addresses), json.dumps(events)])

    def _line(self, process, word):
        match = re.search(r'^%s (\S+)$' % word, process.output(), re.MULTILINE)
        if match is None and not process.is_running():
            raise AssertionError('%s exited\n%s' % (process.name, process.describe()))
        return match

    @staticmethod
    def received(process):
        """The events a listener logged so far, in order."""
        return [json.loads(line[len('EVENT '):]) for line in process.output().splitlines()
                if line.startswith('EVENT ')]

    def wait_received(self, process, count, timeout=START_TIMEOUT):
        def enough():
            if not process.is_running():
                raise AssertionError('%s exited\n%s' % (process.name, process.describe()))
            return len(self.received(process)) >= count
        wait_until(enough, timeout, interval=0.02,
                   message=lambda: '%s received %d of %d events within %.0f s\n%s'
                           % (process.name, len(self.received(process)), count, timeout,
                              '\n'.join(p.describe() for p in self.processes)))
        return self.received(process)

    def close(self):
        errors = []
        for process in self.processes:
            try:
                process.end(signal.SIGKILL)
            except Exception as error:  # keep ending the rest
                errors.append(error)
        if errors:
            raise errors[0]
