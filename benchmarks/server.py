"""TotoServer under load: this package, Toto 1.0.12, and a bare Tornado JSON echo, side by side.

    python -m benchmarks.server
    python -m benchmarks.server --rounds 3 --duration 5 --connections 32
    python -m benchmarks.server --only plain --processes 1 --duration 1

Starts, each in a process group of its own on a free port, with 1 and 2 processes:

``ours``
    this package's ``TotoServer`` serving ``tests/oracle_apps/web_app`` (the method
    package of the web differential tests) through ``tests/oracle_apps/run_server.py``;
``1.0.12``
    the same script and package under the original Toto 1.0.12 on its own stack
    (Python 2.7, Tornado 4.5.3: ``$TOTO_ORACLE_PYTHON``, which ``.ci/run`` installs;
    without it the column is left out);
``bare``
    a plain Tornado ``RequestHandler`` on this interpreter doing the same JSON work
    (parse the body, answer ``{"result": parameters}``; signed: look the session up
    in a dict, check the request HMAC, answer with the session and sign it).

Every server logs as tornado's options set it up (info: one access line a request) and
runs ``hmac_enabled`` with the ``json`` database in memory, where the startup function
``web_app_startup.bench_session`` stores one session with a known id and key in every
process (each process has a database of its own).
Two loads per server, in alternation and round by round:

``plain``
    ``POST /echo`` with a small JSON body;
``hmac``
    ``POST /auth_echo`` (an ``@authenticated`` echo) with ``x-toto-session-id`` and the
    request's ``x-toto-hmac``: the server looks the session up, checks the HMAC and
    signs its answer.

The load comes from ``wrk`` (C, keep-alive connections; ``apt-get install wrk``) when
it is installed, else from Python client processes with keep-alive connections.  Each
load is checked before it is measured (the answer, and its HMAC).  The table gives the
median over the rounds of requests/s and of the server's CPU time per request (all its
processes, from /proc: far less disturbed by the load generator sharing the machine),
with ``ours`` against ``1.0.12`` and against ``bare``.  Linux, Python 3.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN_SERVER = os.path.join(ROOT, 'tests', 'oracle_apps', 'run_server.py')
START_TIMEOUT = 45.0
KINDS = ('bare', 'ours', '1.0.12')
MODES = ('plain', 'hmac')
PARAMETERS = {'text': 'tea', 'cups': 2, 'list': [1, 2, 3], 'nested': {'k': 'v'}}
USER_ID = 'bench'
SESSION_ID = 'BenchSessionId00000000'
SESSION_KEY = 'BenchSessionKey0000000'
PATHS = {'plain': '/echo', 'hmac': '/auth_echo'}
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.server',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=float, default=3.0,
                        help='seconds of load per measure (default %(default)s)')
    parser.add_argument('--warmup', type=float, default=0.5,
                        help='seconds of load before a server is first measured')
    parser.add_argument('--connections', type=int, default=16,
                        help='keep-alive connections of the load (default %(default)s)')
    parser.add_argument('--processes', default='1,2',
                        help='server process counts, comma-separated (default %(default)s)')
    parser.add_argument('--only', default=','.join(MODES),
                        help='loads to measure: plain, hmac (default %(default)s)')
    parser.add_argument('--kinds', default=','.join(KINDS),
                        help='servers: bare, ours, 1.0.12 (default %(default)s)')
    parser.add_argument('--logging', default='info',
                        help="every server's tornado --logging level (default %(default)s)")
    parser.add_argument('--client', choices=('auto', 'wrk', 'python'), default='auto')
    parser.add_argument('--json', default='', help='also write the results to this file')
    # Internal: run the bare Tornado server (in its own process).
    parser.add_argument('--bare-child', nargs=3, metavar=('PORT', 'PROCESSES', 'LOGGING'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def free_port():
    probe = socket.socket()
    try:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def _b64_hmac(key, data):
    return base64.b64encode(hmac.new(key.encode(), data, hashlib.sha1).digest()).decode()


def request_body():
    return json.dumps({'parameters': PARAMETERS}).encode()


def request_headers(mode):
    """The headers of a load request: the session and the request HMAC in ``hmac``."""
    headers = {'Content-Type': 'application/json'}
    if mode == 'hmac':
        headers['x-toto-session-id'] = SESSION_ID
        headers['x-toto-hmac'] = _b64_hmac(
            SESSION_KEY, b'POST' + PATHS[mode].encode() + request_body())
    return headers


# -- the bare Tornado server ---------------------------------------------------------------------

def run_bare_server(port, processes, logging_level):
    """A Tornado JSON echo doing what a TotoServer must at least do for the same requests."""
    import tornado.options
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop
    from tornado.netutil import bind_sockets
    from tornado.process import fork_processes
    from tornado.web import Application, RequestHandler

    tornado.options.parse_command_line(['bare', '--logging=' + logging_level])
    sessions = {SESSION_ID: {'user_id': USER_ID, 'key': SESSION_KEY,
                             'expires': time.time() + 365 * 24 * 3600.0}}

    class EchoHandler(RequestHandler):
        def post(self, path):
            body = json.loads(self.request.body)
            parameters = body.get('parameters') or body
            if path != 'auth_echo':
                self.set_header('Content-Type', 'application/json')
                self.write(json.dumps({'result': parameters}))
                return
            session = sessions.get(self.request.headers.get('x-toto-session-id'))
            signature = (self.request.method + self.request.uri).encode() + self.request.body
            mac = self.request.headers.get('x-toto-hmac', '')
            if not session or not hmac.compare_digest(_b64_hmac(session['key'], signature),
                                                      mac):
                answer = {'error': {'code': 1008, 'value': 'Invalid HMAC'}}
            else:
                session['expires'] = time.time() + 365 * 24 * 3600.0
                answer = {'result': parameters,
                          'session': {'session_id': SESSION_ID, 'expires': session['expires'],
                                      'user_id': session['user_id']}}
            text = json.dumps(answer)
            if session:
                self.set_header('x-toto-hmac',
                                _b64_hmac(session['key'], (SESSION_ID + text).encode()))
            self.set_header('Content-Type', 'application/json')
            self.write(text)

    sockets = bind_sockets(port, '127.0.0.1')
    if processes > 1:
        fork_processes(processes, max_restarts=0)
    server = HTTPServer(Application([(r'/(.*)', EchoHandler)]))
    server.add_sockets(sockets)
    IOLoop.current().start()


# -- servers -------------------------------------------------------------------------------------

class Server(object):
    """One server (a kind, a process count) in a process group of its own."""

    def __init__(self, kind, processes, logging_level):
        self.kind = kind
        self.processes = processes
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix='toto-bench-server-')
        self.log_path = os.path.join(self.directory, 'server.log')
        env = dict(os.environ)
        if kind == 'bare':
            python = sys.executable
            argv = [python, '-m', 'benchmarks.server', '--bare-child', str(self.port),
                    str(processes), logging_level]
            env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
        else:
            conf = os.path.join(self.directory, 'server.conf')
            with open(conf, 'w') as stream:
                stream.write("method_module = 'web_app'\nport = %d\nprocesses = %d\n"
                             "database = 'json'\ndb_host = ''\nhmac_enabled = True\n"
                             "startup_function = 'web_app_startup.bench_session'\n"
                             "pidfile = '%s'\n"
                             % (self.port, processes, os.path.join(self.directory, 'toto.pid')))
            env['TOTO_BENCH_SESSION'] = '%s:%s:%s' % (USER_ID, SESSION_ID, SESSION_KEY)
            argv = [RUN_SERVER, conf, '--logging=' + logging_level]
            if kind == 'ours':
                python = sys.executable
                env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
            else:
                python = os.environ['TOTO_ORACLE_PYTHON']
                for name in ('PYTHONPATH', 'PYTHONHOME'):
                    env.pop(name, None)
                env['PYTHONHASHSEED'] = '0'
            argv = [python] + argv
        with open(self.log_path, 'wb') as log:
            self.process = subprocess.Popen(argv, cwd=ROOT if kind == 'bare' else self.directory,
                                            env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def label(self):
        return '%s x%d' % (self.kind, self.processes)

    def log_tail(self):
        with open(self.log_path, 'rb') as log:
            return log.read()[-3000:].decode('utf-8', 'replace')

    def request(self, mode):
        """One load request, checked: ``(status, answer)``; raises if it is wrong."""
        connection = HTTPConnection('127.0.0.1', self.port, timeout=10)
        try:
            connection.request('POST', PATHS[mode], request_body(), request_headers(mode))
            response = connection.getresponse()
            body = response.read()
            mac = response.getheader('x-toto-hmac')
        finally:
            connection.close()
        answer = json.loads(body)
        if response.status != 200 or answer.get('result') != PARAMETERS:
            raise RuntimeError('%s answered %s %r' % (self.label, response.status, body[:300]))
        if mode == 'hmac':
            expected = _b64_hmac(SESSION_KEY, SESSION_ID.encode() + body)
            if mac != expected or answer['session']['session_id'] != SESSION_ID:
                raise RuntimeError('%s signed its answer wrongly: %r for %r'
                                   % (self.label, mac, body[:300]))
        return answer

    def wait_ready(self):
        deadline = time.time() + START_TIMEOUT
        while True:
            try:
                return self.request('plain')
            except (OSError, ValueError, RuntimeError) as error:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError('%s did not start (%s):\n%s'
                                       % (self.label, error, self.log_tail()))
            time.sleep(0.05)

    def cpu_seconds(self):
        """User + system CPU time of every live process of the server's group."""
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
            if int(fields[2]) == self.process.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / float(CLOCK_TICKS)

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- load ----------------------------------------------------------------------------------------

_WRK_SCRIPT = """wrk.method = "POST"
wrk.body = %s
%s
"""


def _lua_string(text):
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


def load_with_wrk(server, mode, duration, connections, directory):
    """``(requests, seconds)`` of a wrk run of ``duration`` against ``server``."""
    script = os.path.join(directory, 'load-%s.lua' % mode)
    headers = '\n'.join('wrk.headers[%s] = %s' % (_lua_string(name), _lua_string(value))
                        for name, value in request_headers(mode).items())
    with open(script, 'w') as stream:
        stream.write(_WRK_SCRIPT % (_lua_string(request_body().decode()), headers))
    command = ['wrk', '-t1', '-c%d' % connections, '-d%ds' % max(1, round(duration)),
               '-s', script, 'http://127.0.0.1:%d%s' % (server.port, PATHS[mode])]
    output = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=duration + 30, check=True).stdout.decode()
    done = re.search(r'(\d+) requests in ([\d.]+)(ms|s|m)', output)
    if not done or 'Non-2xx' in output or 'Socket errors' in output:
        raise RuntimeError('wrk against %s: %s' % (server.label, output))
    seconds = float(done.group(2)) * {'ms': 0.001, 's': 1.0, 'm': 60.0}[done.group(3)]
    return int(done.group(1)), seconds


def _python_client(port, mode, duration, connections, results):
    """Keep-alive connections from one process, one request at a time on each (threads)."""
    import threading
    body, headers = request_body(), request_headers(mode)
    counts = []

    def run():
        connection = HTTPConnection('127.0.0.1', port, timeout=10)
        count = 0
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            connection.request('POST', PATHS[mode], body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError('status %d' % response.status)
            count += 1
        connection.close()
        counts.append(count)
    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(sum(counts))


def load_with_python(server, mode, duration, connections, directory):
    import multiprocessing
    processes = max(1, min(os.cpu_count() or 1, connections))
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(
        target=_python_client,
        args=(server.port, mode, duration, max(1, connections // processes), results))
        for _ in range(processes)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    total = sum(results.get(timeout=duration + 60) for _ in workers)
    for worker in workers:
        worker.join()
    return total, time.perf_counter() - started


def measure(server, mode, args, load, directory):
    """``{'rps', 'cpu_us'}`` of one load run against ``server`` (answers checked first)."""
    server.request(mode)
    cpu_before = server.cpu_seconds()
    requests, seconds = load(server, mode, args.duration, args.connections, directory)
    cpu = server.cpu_seconds() - cpu_before
    server.request(mode)
    return {'rps': requests / seconds, 'cpu_us': cpu / max(1, requests) * 1e6}


# -- the run -------------------------------------------------------------------------------------

def choose_load(args):
    if args.client in ('auto', 'wrk') and shutil.which('wrk'):
        return 'wrk', load_with_wrk
    if args.client == 'wrk':
        sys.exit('python -m benchmarks.server: no wrk (apt-get install wrk)')
    return 'python clients', load_with_python


def run(args, log):
    kinds = [kind for kind in args.kinds.split(',') if kind]
    if '1.0.12' in kinds and not os.environ.get('TOTO_ORACLE_PYTHON'):
        log('TOTO_ORACLE_PYTHON is not set: no 1.0.12 column (bash .ci/run installs one)')
        kinds.remove('1.0.12')
    counts = [int(count) for count in args.processes.split(',')]
    modes = [mode for mode in args.only.split(',') if mode]
    load_name, load = choose_load(args)
    log('load: %s, %d connections, %.1f s a measure, %d rounds'
        % (load_name, args.connections, args.duration, args.rounds))
    directory = tempfile.mkdtemp(prefix='toto-bench-load-')
    servers = {}
    try:
        for kind in kinds:
            for count in counts:
                servers[kind, count] = Server(kind, count, args.logging)
        for server in servers.values():
            server.wait_ready()
            for mode in modes:
                if args.warmup > 0:
                    load(server, mode, args.warmup, args.connections, directory)
        log('servers ready: ' + ', '.join(server.label for server in servers.values()))
        results = {}
        for index in range(args.rounds):
            for count in counts:
                for mode in modes:
                    order = kinds if index % 2 == 0 else list(reversed(kinds))
                    for kind in order:
                        result = measure(servers[kind, count], mode, args, load, directory)
                        results.setdefault((mode, count, kind), []).append(result)
            log('round %d of %d done' % (index + 1, args.rounds))
        return kinds, counts, modes, load_name, results
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def summarize(kinds, counts, modes, results):
    """``{(mode, processes, kind): {'rps', 'cpu_us'}}``: medians over the rounds."""
    summary = {}
    for key, rounds in results.items():
        summary[key] = dict((name, statistics.median(result[name] for result in rounds))
                            for name in ('rps', 'cpu_us'))
    return summary


def table(kinds, counts, modes, summary, load_name, args):
    lines = ['TotoServer: %s vs bare Tornado, %s, %d connections, %d rounds of %.0f s '
             '(medians)' % (' vs '.join(kind for kind in kinds if kind != 'bare'), load_name,
                            args.connections, args.rounds, args.duration), '']
    header = '%-6s %5s %-8s %10s %11s %14s %14s' % (
        'load', 'procs', 'server', 'req/s', 'CPU us/req', 'ours/1.0.12', 'ours/bare')
    lines += [header, '-' * len(header)]
    for mode in modes:
        for count in counts:
            for kind in kinds:
                row = summary[mode, count, kind]
                versus = {}
                for other in ('1.0.12', 'bare'):
                    base = summary.get((mode, count, other))
                    if kind == 'ours' and base:
                        versus[other] = '%.2fx /%.2fx' % (row['rps'] / base['rps'],
                                                          row['cpu_us'] / base['cpu_us'])
                lines.append('%-6s %5d %-8s %10.0f %11.0f %14s %14s' % (
                    mode, count, kind, row['rps'], row['cpu_us'], versus.get('1.0.12', ''),
                    versus.get('bare', '')))
        lines.append('')
    lines.append('ratios: req/s of ours over the other, then CPU per request of ours over the '
                 'other (lower is better)')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.bare_child:
        port, processes, logging_level = args.bare_child
        return run_bare_server(int(port), int(processes), logging_level)

    def log(message):
        print(message, file=sys.stderr)
        sys.stderr.flush()
    kinds, counts, modes, load_name, results = run(args, log)
    summary = summarize(kinds, counts, modes, results)
    print(table(kinds, counts, modes, summary, load_name, args))
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump({'load': load_name, 'args': vars(args),
                       'results': [{'mode': mode, 'processes': count, 'server': kind,
                                    'rounds': rounds}
                                   for (mode, count, kind), rounds in sorted(results.items())],
                       'summary': [dict(summary[key], mode=key[0], processes=key[1],
                                        server=key[2]) for key in sorted(summary)]},
                      stream, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
