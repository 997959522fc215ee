"""TotoServer on each database driver: logins/s and authenticated calls/s, against 1.0.12 and raw.

    python -m benchmarks.databases
    python -m benchmarks.databases --drivers mysql,mongodb --rounds 3 --duration 3
    python -m benchmarks.databases --quick          # tiny sizes: the smoke test's run

For each driver (``redis``, ``mysql`` on MariaDB, ``postgres``, ``mongodb`` on SecantusDB --
a MongoDB wire server in Python, so its numbers are SecantusDB's, not mongod's -- and ``json``
in memory for reference) the command starts the database server (tests/dbservers.py, private
port and temporary directory), then, each in a process group of its own, one-process servers
running ``tests/oracle_apps/run_server.py`` on ``tests/oracle_apps/web_app``:

``ours``
    this package's ``TotoServer`` on this interpreter;
``1.0.12``
    Toto 1.0.12's, on Python 2.7 (``$TOTO_ORACLE_DB_PYTHON``: toto 1.0.12, torndb and
    mysqlclient, pymongo 3.13 given 1.0.12's ``pymongo.Connection`` name), on the same
    database server in a database of its own; only where 1.0.12's driver runs: ``mysql`` and
    ``mongodb`` (its redis and postgres drivers cannot be constructed, see docs/migration.rst).

The startup function ``benchmarks/db_startup/dbbench_startup.py`` creates the accounts through
the server's own connection.  A login's cost is its password hash's PBKDF2 iterations, so
logins are measured at three costs (this package) -- 400 (``--password_hash_legacy``, the only
cost 1.0.12 has), 1,000 (what the tests use) and 100,000 (the default) -- against 1.0.12's
400.  Loads, with ``--connections`` concurrent keep-alive clients (``wrk`` when installed,
else Python threads):

``login-400``, ``login-1000``, ``login-100k``
    ``POST /account/login`` (each request a new session written to the database);
``auth``
    ``POST /whoami`` (``@authenticated``: the session is read from the database, renewed
    when due) with ``x-toto-session-id`` of a session logged in once.

``raw`` is the database library's own session lookup, one at a time from one Python client
in this process (redis-py ``GET session:<id>``, PyMySQL / psycopg2 the driver's ``SELECT ...
session LEFT JOIN account``, pymongo ``find_one``) on the same session: what the database
costs before any HTTP, JSON or Toto.  Every load is checked before and after it is measured;
rounds alternate the servers' order; the table gives medians over the rounds of requests/s and
of each TotoServer's CPU time per request (from /proc: far less disturbed than requests/s by
other work on the machine; the database server's CPU is not in it).  Linux, Python 3.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection

from benchmarks.server import _lua_string, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTS = os.path.join(ROOT, 'tests')
RUN_SERVER = os.path.join(TESTS, 'oracle_apps', 'run_server.py')
STARTUP_DIR = os.path.join(HERE, 'db_startup')
START_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
DRIVERS = ('redis', 'mysql', 'postgres', 'mongodb', 'json')
ORACLE_DRIVERS = ('mysql', 'mongodb', 'json')
SERVER_KIND = {'redis': 'redis', 'mysql': 'mariadb', 'postgres': 'postgres',
               'mongodb': 'mongodb'}
LABELS = {'redis': 'redis (redis-server)', 'mysql': 'mysql (MariaDB)',
          'postgres': 'postgres (PostgreSQL)',
          'mongodb': 'mongodb (SecantusDB, not mongod)', 'json': 'json (in memory)'}
# load -> (account, the cost this package's account hash has)
LOGINS = {'login-400': ('bench400', 'legacy'), 'login-1000': ('bench1000', '1000'),
          'login-100k': ('bench100k', '100000')}
LOADS = ('login-400', 'login-1000', 'login-100k', 'auth')
AUTH_USER = 'benchauth'
ACCOUNTS = ','.join(['%s:%s' % account for account in LOGINS.values()] + [AUTH_USER + ':1000'])
ORACLE_SITECUSTOMIZE = (
    '# Toto 1.0.12 calls pymongo.Connection, which pymongo 3 renamed MongoClient.\n'
    'import pymongo\n'
    'if not hasattr(pymongo, "Connection"):\n'
    '    pymongo.Connection = pymongo.MongoClient\n')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.databases',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--drivers', default=','.join(DRIVERS),
                        help='drivers to measure (default %(default)s)')
    parser.add_argument('--loads', default=','.join(LOADS),
                        help='loads to measure (default %(default)s)')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--duration', type=float, default=2.0,
                        help='seconds of load per measure (default %(default)s)')
    parser.add_argument('--warmup', type=float, default=0.5,
                        help='seconds of load on each server before it is measured')
    parser.add_argument('--connections', type=int, default=8,
                        help='concurrent keep-alive clients (default %(default)s)')
    parser.add_argument('--logging', default='info',
                        help="every server's tornado --logging level (default %(default)s)")
    parser.add_argument('--client', choices=('auto', 'wrk', 'python'), default='auto')
    parser.add_argument('--no-oracle', action='store_true', help='leave 1.0.12 out')
    parser.add_argument('--database-threads', type=int, default=None,
                        help="our servers' --database_threads (0: database work on the IOLoop)")
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, Python clients (the smoke test): numbers mean nothing')
    parser.add_argument('--json', default='', help='also write the results to this file')
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.client = 1, 0.4, 0.0, 'python'
        args.connections = min(args.connections, 4)
        if args.loads == ','.join(LOADS):
            args.loads = 'login-400,auth'
    return args


# -- the database servers ------------------------------------------------------------------------

def _dbservers():
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    import dbservers
    return dbservers


class Database(object):
    """A database server for one driver, with a database for each TotoServer on it."""

    def __init__(self, driver):
        self.driver = driver
        self.server = None
        if driver != 'json':
            dbservers = _dbservers()
            kind = SERVER_KIND[driver]
            reason = dbservers.missing(kind)
            if reason:
                raise RuntimeError(reason)
            self.server = dbservers.SERVERS[kind][0]()
            try:
                self.server.start()
            except BaseException:
                self.server.close()  # nothing left behind: process nor directory
                raise

    def options(self, name):
        """The toto options of the database ``name`` ('ours' or 'oracle') on this server."""
        if self.driver == 'json':
            return {'database': 'json', 'db_host': ''}
        values = {'database': self.driver, 'db_host': '127.0.0.1', 'db_port': self.server.port}
        database = 'bench_' + name
        if self.driver == 'redis':
            values['redis_database'] = {'ours': 0, 'oracle': 1}[name]
        elif self.driver == 'mongodb':
            values['mongodb_database'] = database
        else:
            self.server.create_database(database)
            values.update({self.driver + '_database': database,
                           self.driver + '_user': self.server.user})
            if getattr(self.server, 'password', None):
                values[self.driver + '_password'] = self.server.password
        return values

    def close(self):
        if self.server is not None:
            self.server.close()


# -- the raw lookups -----------------------------------------------------------------------------

_SQL_LOOKUP = ('select session.session_id, session.expires, session.state, account.user_id '
               'from session left join account on session.account_id = account.account_id '
               'where session.session_id = %s')


def raw_lookup(driver, options, session_id):
    """``(lookup, close)``: the database library's own read of the stored session."""
    if driver == 'redis':
        import redis
        client = redis.StrictRedis('127.0.0.1', options['db_port'], options['redis_database'])
        key = 'session:' + session_id

        def lookup():
            return client.get(key)
        return lookup, client.close
    if driver == 'mongodb':
        import pymongo
        client = pymongo.MongoClient('127.0.0.1', options['db_port'])
        sessions = client[options['mongodb_database']].sessions

        def lookup():
            return sessions.find_one({'session_id': session_id})
        return lookup, client.close
    if driver == 'mysql':
        import pymysql
        connection = pymysql.connect(host='127.0.0.1', port=options['db_port'],
                                     user=options['mysql_user'],
                                     password=options['mysql_password'],
                                     database=options['mysql_database'], autocommit=True)
    else:
        import psycopg2
        connection = psycopg2.connect(host='127.0.0.1', port=options['db_port'],
                                      user=options['postgres_user'],
                                      dbname=options['postgres_database'])
        connection.autocommit = True
    cursor = connection.cursor()

    def lookup():
        cursor.execute(_SQL_LOOKUP, (session_id,))
        return cursor.fetchone()
    return lookup, connection.close


def measure_raw(lookup, duration):
    """Lookups per second, one at a time, for ``duration`` seconds (each one checked)."""
    count = 0
    started = time.perf_counter()
    deadline = started + duration
    while time.perf_counter() < deadline:
        if not lookup():
            raise RuntimeError('the raw lookup found no session')
        count += 1
    return count / (time.perf_counter() - started)


# -- the TotoServers -----------------------------------------------------------------------------

class Server(object):
    """One one-process TotoServer (``ours`` or ``1.0.12``) in a process group of its own."""

    def __init__(self, kind, driver, options, logging_level):
        self.kind = kind
        self.driver = driver
        self.options = options
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix='toto-bench-db-')
        self.log_path = os.path.join(self.directory, 'server.log')
        conf = os.path.join(self.directory, 'server.conf')
        settings = dict(options, method_module='web_app', port=self.port, processes=1,
                        startup_function='dbbench_startup.init',
                        pidfile=os.path.join(self.directory, 'toto.pid'))
        with open(conf, 'w') as stream:
            for name, value in sorted(settings.items()):
                stream.write('%s = %r\n' % (name, value))
        env = dict((name, value) for name, value in os.environ.items()
                   if not name.startswith('PYTHON'))
        env['TOTO_BENCH_ACCOUNTS'] = ACCOUNTS
        env['TOTO_BENCH_SESSION_USER'] = AUTH_USER
        self.session_file = env['TOTO_BENCH_SESSION_FILE'] = os.path.join(self.directory,
                                                                          'session-id')
        path = [STARTUP_DIR]
        if kind == 'ours':
            python = sys.executable
            path.insert(0, ROOT)
        else:
            python = os.environ['TOTO_ORACLE_DB_PYTHON']
            env['PYTHONHASHSEED'] = '0'
            if driver == 'mongodb':
                with open(os.path.join(self.directory, 'sitecustomize.py'), 'w') as stream:
                    stream.write(ORACLE_SITECUSTOMIZE)
                path.append(self.directory)
        env['PYTHONPATH'] = os.pathsep.join(path)
        with open(self.log_path, 'wb') as log:
            self.process = subprocess.Popen(
                [python, RUN_SERVER, conf, '--logging=' + logging_level], cwd=self.directory,
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.session_id = None

    @property
    def label(self):
        return '%s on %s' % (self.kind, self.driver)

    def log_tail(self):
        with open(self.log_path, 'rb') as log:
            return log.read()[-3000:].decode('utf-8', 'replace')

    def request(self, load, user_id=None):
        """One request of ``load``, checked: its ``result``; raises if it is wrong.

        ``user_id`` logs that user in instead (a ``login-*`` load's path and body).
        """
        path, body, headers = request_of(load, self.session_id, user_id)
        connection = HTTPConnection('127.0.0.1', self.port, timeout=30)
        try:
            connection.request('POST', path, body, headers)
            response = connection.getresponse()
            text = response.read()
        finally:
            connection.close()
        answer = json.loads(text)
        result = answer.get('result') if isinstance(answer, dict) else None
        expected = user_id or (LOGINS[load][0] if load in LOGINS else AUTH_USER)
        if response.status != 200 or not isinstance(result, dict) or \
                result.get('user_id') != expected:
            raise RuntimeError('%s answered %s to %s: %r'
                               % (self.label, response.status, load, text[:300]))
        return result

    def wait_ready(self):
        """Wait until the startup function's session answers an authenticated call."""
        deadline = time.time() + START_TIMEOUT
        error = 'no session written yet'
        while True:
            try:
                if os.path.exists(self.session_file):
                    with open(self.session_file) as stream:
                        self.session_id = stream.read()
                    self.request('auth')
                    return
            except (OSError, ValueError, RuntimeError) as problem:
                error = problem
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError('%s did not start (%s):\n%s'
                                   % (self.label, error, self.log_tail()))
            time.sleep(0.1)

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def request_of(load, session_id, user_id=None):
    """``(path, body, headers)`` of a request of ``load`` (``user_id``: log that user in)."""
    headers = {'Content-Type': 'application/json'}
    if load == 'auth' and not user_id:
        headers['x-toto-session-id'] = session_id
        return '/whoami', json.dumps({'parameters': {}}).encode(), headers
    user_id = user_id or LOGINS[load][0]
    body = {'parameters': {'user_id': user_id, 'password': user_id}}
    return '/account/login', json.dumps(body).encode(), headers


# -- load ----------------------------------------------------------------------------------------

_WRK_SCRIPT = """wrk.method = "POST"
wrk.body = %s
%s
"""


def load_with_wrk(server, load, duration, connections, directory):
    """``(requests, seconds)`` of a wrk run of ``duration`` (whole seconds) on ``server``."""
    path, body, headers = request_of(load, server.session_id)
    script = os.path.join(directory, 'load-%s.lua' % load)
    with open(script, 'w') as stream:
        stream.write(_WRK_SCRIPT % (_lua_string(body.decode()), '\n'.join(
            'wrk.headers[%s] = %s' % (_lua_string(name), _lua_string(value))
            for name, value in headers.items())))
    command = ['wrk', '-t1', '-c%d' % connections, '-d%ds' % max(1, round(duration)),
               '--timeout', '30s', '-s', script, 'http://127.0.0.1:%d%s' % (server.port, path)]
    output = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=duration + 60, check=True).stdout.decode()
    done = re.search(r'(\d+) requests in ([\d.]+)(ms|s|m)', output)
    if not done or 'Non-2xx' in output or 'Socket errors' in output:
        raise RuntimeError('wrk against %s: %s' % (server.label, output))
    seconds = float(done.group(2)) * {'ms': 0.001, 's': 1.0, 'm': 60.0}[done.group(3)]
    return int(done.group(1)), seconds


def load_with_python(server, load, duration, connections, directory):
    """``(requests, seconds)``: keep-alive connections from threads of this process."""
    path, body, headers = request_of(load, server.session_id)
    counts, errors = [], []

    def run():
        connection = HTTPConnection('127.0.0.1', server.port, timeout=30)
        count = 0
        deadline = time.perf_counter() + duration
        try:
            while time.perf_counter() < deadline:
                connection.request('POST', path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError('%s: status %d' % (server.label, response.status))
                count += 1
        except Exception as error:  # reported below, in the measuring thread
            errors.append(error)
        finally:
            connection.close()
        counts.append(count)
    threads = [threading.Thread(target=run) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts), time.perf_counter() - started


def choose_load(args):
    if args.client in ('auto', 'wrk') and shutil.which('wrk'):
        return 'wrk', load_with_wrk
    if args.client == 'wrk':
        sys.exit('python -m benchmarks.databases: no wrk (apt-get install wrk)')
    return 'python clients', load_with_python


def group_cpu_seconds(group):
    """User + system CPU time of every live process of the process group ``group``."""
    ticks = 0
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as stream:
                fields = stream.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, ... utime (11), stime (12).
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / float(CLOCK_TICKS)


def measure(server, load_name, args, load, directory):
    """``(requests/s, server CPU us/request)`` of one ``load_name`` run (checked around)."""
    server.request(load_name)
    cpu = group_cpu_seconds(server.process.pid)
    requests, seconds = load(server, load_name, args.duration, args.connections, directory)
    cpu = group_cpu_seconds(server.process.pid) - cpu
    server.request(load_name)
    return requests / seconds, cpu / max(1, requests) * 1e6


# -- the run -------------------------------------------------------------------------------------

def oracle_reason(args, driver):
    """Why there is no 1.0.12 column for ``driver``, or None."""
    if args.no_oracle:
        return 'left out (--no-oracle)'
    if driver not in ORACLE_DRIVERS:
        return "1.0.12's %s driver does not run" % driver
    python = os.environ.get('TOTO_ORACLE_DB_PYTHON')
    if not python or not os.path.isfile(python):
        return '$TOTO_ORACLE_DB_PYTHON is not set (Python 2.7 with toto 1.0.12 and drivers)'
    return None


def run_driver(driver, loads, args, load, log):
    """``{(load, kind): [per round]}`` for one driver; kind: ours, 1.0.12, raw."""
    results = {}
    database = Database(driver)
    servers = {}
    directory = tempfile.mkdtemp(prefix='toto-bench-dbload-')
    raw = None
    try:
        our_options = database.options('ours')
        if args.database_threads is not None:
            our_options['database_threads'] = args.database_threads
        servers['ours'] = Server('ours', driver, our_options, args.logging)
        if not oracle_reason(args, driver):
            servers['1.0.12'] = Server('1.0.12', driver, database.options('oracle'),
                                       args.logging)
        failures = {}
        for server in servers.values():
            server.wait_ready()
            for name in loads:
                if server.kind == '1.0.12':
                    if name not in ('login-400', 'auth'):
                        continue  # one hash cost: its login is measured once
                    try:
                        server.request(name)
                    except RuntimeError as error:  # 1.0.12's mongodb login: it is its defect
                        failures[name] = str(error)
                        log('no 1.0.12 %s on %s: %s' % (name, driver, error))
                        continue
                if args.warmup > 0:
                    load(server, name, args.warmup, args.connections, directory)
        if driver != 'json' and 'auth' in loads:
            raw = raw_lookup(driver, our_options, servers['ours'].session_id)
        kinds = list(servers)
        for index in range(args.rounds):
            order = kinds if index % 2 == 0 else list(reversed(kinds))
            for name in loads:
                for kind in order:
                    if kind == '1.0.12' and (name not in ('login-400', 'auth') or
                                             name in failures):
                        continue
                    rate, cpu = measure(servers[kind], name, args, load, directory)
                    results.setdefault((name, kind), []).append(rate)
                    results.setdefault((name, kind + ' cpu'), []).append(cpu)
                if name == 'auth' and raw is not None:
                    results.setdefault(('auth', 'raw'), []).append(
                        measure_raw(raw[0], args.duration))
        log('%s: %d round(s) done' % (driver, args.rounds))
        return results, failures
    finally:
        if raw is not None:
            raw[1]()
        for server in servers.values():
            server.stop()
        database.close()
        shutil.rmtree(directory, ignore_errors=True)


def summarize(results):
    return dict((key, statistics.median(rounds)) for key, rounds in results.items())


_LOAD_TEXT = {'login-400': 'login, 400 it. (legacy)', 'login-1000': 'login, 1,000 it.',
              'login-100k': 'login, 100,000 it.', 'auth': 'auth call'}


def _ratio(mine, other):
    return '%.2fx' % (mine / other) if mine and other else '-'


def _number(value):
    return '%.0f' % value if value else '-'


def table(driver, loads, summary, reason, failures):
    lines = [LABELS[driver] + ('' if not reason else '  [no 1.0.12: %s]' % reason)]
    row = '  %-24s %8s %8s %8s %11s %8s %9s %10s'
    header = row % ('load', 'ours/s', '1.0.12/s', 'raw/s', 'ours/1.0.12', 'ours/raw',
                    'CPU ours', 'CPU 1.0.12')
    lines += [header, '  ' + '-' * (len(header) - 2)]
    for name in loads:
        ours = summary.get((name, 'ours'))
        oracle = summary.get((name, '1.0.12'))
        raw = summary.get((name, 'raw'))
        lines.append(row % (
            _LOAD_TEXT[name], _number(ours),
            _number(oracle) if oracle or name not in failures else 'fails', _number(raw),
            _ratio(ours, oracle), _ratio(ours, raw), _number(summary.get((name, 'ours cpu'))),
            _number(summary.get((name, '1.0.12 cpu')))))
    for name, error in sorted(failures.items()):
        found = re.search(r'"code": (\d+), "value": "([^"]*)"', error)
        lines.append('  1.0.12 %s fails: %s' % (
            name, ('error %s, %s' % found.groups()).replace("\\'", "'") if found
            else error[-160:]))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)

    def log(message):
        print(message, file=sys.stderr)
        sys.stderr.flush()
    drivers = [driver for driver in args.drivers.split(',') if driver]
    loads = [name for name in args.loads.split(',') if name]
    for names, known, what in ((drivers, DRIVERS, 'driver'), (loads, LOADS, 'load')):
        for name in names:
            if name not in known:
                sys.exit('python -m benchmarks.databases: unknown %s %r (one of %s)'
                         % (what, name, ', '.join(known)))
    load_name, load = choose_load(args)
    log('load: %s, %d connections, %.1f s a measure, %d round(s); servers: 1 process each'
        % (load_name, args.connections, args.duration, args.rounds))
    output = ['TotoServer on each database: this package (ours) vs Toto 1.0.12 vs the raw '
              'library lookup', '%s, %d connections, %d round(s) of %.1f s (medians)'
              % (load_name, args.connections, args.rounds, args.duration), '']
    everything = {}
    for driver in drivers:
        missing = driver != 'json' and _dbservers().missing(SERVER_KIND[driver])
        if missing:
            log('%s: not measured: %s' % (driver, missing))
            everything[driver] = {'missing': missing}
            output += ['%s: not measured: %s' % (LABELS[driver], missing), '']
            continue
        results, failures = run_driver(driver, loads, args, load, log)
        summary = summarize(results)
        reason = oracle_reason(args, driver)
        everything[driver] = {'oracle': reason, 'results': results, 'summary': summary,
                              'oracle_failures': failures}
        output += [table(driver, loads, summary, reason, failures), '']
    output += [
        'requests/s; logins: PBKDF2 iterations of the account hash (ours); 1.0.12 has only '
        '400 (pure Python), so',
        '  its login is in the 400 row; the tests use 1,000, the default is 100,000. '
        'raw: the library\'s own session',
        '  lookup, one at a time from one Python client (no HTTP). MongoDB numbers are '
        'SecantusDB\'s, not mongod\'s.',
        '  CPU: microseconds of the TotoServer process\'s CPU time per request (the database '
        'server\'s not included).']
    print('\n'.join(output))
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump({'load': load_name, 'args': vars(args), 'drivers': dict(
                (driver, {'oracle': data['oracle'], 'oracle_failures': data['oracle_failures'],
                          'measures': [{'load': name, 'kind': kind, 'rounds': rounds,
                                        'median': data['summary'][name, kind]}
                                       for (name, kind), rounds in sorted(
                                           data['results'].items())]})
                for driver, data in everything.items() if 'missing' not in data),
                'missing': dict((driver, data['missing']) for driver, data in everything.items()
                                if 'missing' in data)}, stream, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
