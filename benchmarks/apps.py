"""A Toto 1.0.12 method package on the original package and on this one, side by side.

    TOTO_ORACLE_PYTHON=~/.cache/toto-oracle-1.0.12/bin/python python -m benchmarks.apps
    python -m benchmarks.apps --rounds 5 --calls 5000 --logins 60

Runs ``benchmarks/app_methods`` (a method module as applications write them:
``from toto.invocation import *``, ``@requires``, ``@default_parameters``, a
login on the ``json`` database) in a ``TotoWorkerService`` of one worker
process, under Toto 1.0.12 on its own stack (Python 2.7, Tornado 4.5.3,
pyzmq 16; ``.ci/run`` installs it and names its interpreter in
``TOTO_ORACLE_PYTHON``) and under this package, in both dispatch modes.  One
client of this package, on this interpreter, calls each service in turn,
round by round, alternating which goes first.  Measures:

``plain``
    calls/s of an undecorated method that returns its parameters: the cost
    of the service itself (the raw baseline of each side);
``decorated``
    calls/s of the same work behind ``@requires`` and
    ``@default_parameters``;
``login``
    logins/s (``db_connection.create_session`` with a password check).
    This package hashes new passwords with 100,000 PBKDF2 iterations where
    1.0.12 used 400; ``legacy hashes`` is this package with
    ``--password_hash_legacy``, whose account hash costs what 1.0.12's did.

The table shows the median of the rounds and each side's ratio to 1.0.12.
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

START_TIMEOUT = 30.0

#: (label, which package, extra options)
SIDES = (
    ('1.0.12', 'original', []),
    ('ours', 'compat', []),
    ('ours, queue', 'compat', ['--dispatch=queue']),
    ('ours, legacy hashes', 'compat', ['--password_hash_legacy']),
)
CONF = """method_module = 'app_methods'
startup_function = 'app_startup.init'
database = 'json'
db_host = ''
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.apps',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--calls', type=int, default=3000,
                        help='calls per round for plain and decorated (default %(default)s)')
    parser.add_argument('--logins', type=int, default=40,
                        help='logins per round (default %(default)s)')
    parser.add_argument('--in-flight', type=int, default=50)
    return parser.parse_args(argv)


def free_port():
    probe = socket.socket()
    try:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


class Service(object):
    """One app service in a process group of its own."""

    def __init__(self, package, options):
        self.package = package
        self.directory = tempfile.mkdtemp(prefix='toto-apps-')
        self.address = 'tcp://127.0.0.1:%d' % free_port()
        conf = os.path.join(self.directory, 'app.conf')
        with open(conf, 'w') as conf_file:
            conf_file.write(CONF)
        env = dict(os.environ)
        if package == 'original':
            python = os.environ['TOTO_ORACLE_PYTHON']
            # The original's own site-packages only: this checkout must not
            # shadow its toto.
            for name in ('PYTHONPATH', 'PYTHONHOME'):
                env.pop(name, None)
        else:
            python = sys.executable
            env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
        command = [python, os.path.join(HERE, 'app_service.py'), conf, '--processes=1',
                   '--worker_bind_address=' + self.address,
                   '--worker_socket_address=ipc://%s/workers.sock' % self.directory,
                   '--control_socket_address=ipc://%s/control.sock' % self.directory,
                   '--pidfile=%s/toto.pid' % self.directory] + list(options)
        self.log = open(os.path.join(self.directory, 'service.log'), 'wb')
        self.process = subprocess.Popen(command, cwd=self.directory, env=env,
                                        stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self):
        with open(os.path.join(self.directory, 'service.log'), 'rb') as log:
            return log.read()[-2000:].decode('utf-8', 'replace')


async def wait_ready(connection, service):
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        if service.process.poll() is not None:
            break
        answer = await connection.invoke('plain', {'ready': True}, timeout=0.5, await_=True)
        if answer == {'ready': True}:
            return
    raise RuntimeError('the %s service did not answer: %s' % (service.package,
                                                              service.log_tail()))


async def rate(connection, method, parameters, calls, in_flight, expect):
    """Calls per second of ``method``, ``in_flight`` at a time; checks every answer."""
    limit = asyncio.Semaphore(in_flight)

    async def one():
        async with limit:
            answer = await connection.invoke(method, dict(parameters), timeout=60,
                                             await_=True)
        if not expect(answer):
            raise RuntimeError('%s answered %r' % (method, answer))

    started = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(calls)])
    return calls / (time.perf_counter() - started)


async def measure_side(package, options, args):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    service = Service(package, options)
    connection = ZMQWorkerConnection(service.address, timeout=30.0)
    try:
        await wait_ready(connection, service)
        return {
            'plain': await rate(connection, 'plain', {'n': 1}, args.calls, args.in_flight,
                                lambda answer: answer == {'n': 1}),
            'decorated': await rate(connection, 'checked', {'n': 1}, args.calls,
                                    args.in_flight, lambda answer: answer == {'n': 2}),
            'login': await rate(connection, 'login',
                                {'user_id': 'bench', 'password': 'secret'}, args.logins,
                                args.in_flight,
                                lambda answer: len(answer.get('session_id', '')) == 22),
        }
    finally:
        connection.close()
        service.stop()


def main(argv=None):
    args = parse_args(argv)
    if not os.environ.get('TOTO_ORACLE_PYTHON'):
        sys.exit('python -m benchmarks.apps: set TOTO_ORACLE_PYTHON to a Python 2.7 with '
                 'toto==1.0.12 (bash .ci/run installs one in ~/.cache/toto-oracle-1.0.12)')
    results = dict((label, []) for label, _, _ in SIDES)
    for index in range(args.rounds):
        order = SIDES if index % 2 == 0 else tuple(reversed(SIDES))
        for label, package, options in order:
            results[label].append(asyncio.run(measure_side(package, options, args)))
        print('round %d of %d done' % (index + 1, args.rounds), file=sys.stderr)
    print_table(results, args)


def print_table(results, args):
    def median(label, measure):
        return statistics.median(result[measure] for result in results[label])

    print('A Toto 1.0.12 app, one worker process, %d rounds (median; %d calls, %d logins '
          'a round, %d in flight)' % (args.rounds, args.calls, args.logins, args.in_flight))
    print()
    header = '%-22s' % 'measure' + ''.join('%22s' % label for label, _, _ in SIDES)
    print(header)
    for measure, unit in (('plain', 'calls/s'), ('decorated', 'calls/s'),
                          ('login', 'logins/s')):
        original = median('1.0.12', measure)
        cells = []
        for label, _, _ in SIDES:
            value = median(label, measure)
            cells.append('%9.1f (x%5.2f)' % (value, value / original))
        print('%-22s' % ('%s %s' % (measure, unit)) + ''.join('%22s' % cell for cell in cells))
    print()
    print('(xN: the ratio to Toto 1.0.12 in the same run)')


if __name__ == '__main__':
    main()
