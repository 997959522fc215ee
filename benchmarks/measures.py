"""The measures.  Each is a coroutine run on the benchmark's event loop (which
is also Tornado's IOLoop) that returns :class:`~benchmarks.report.Row` objects.

Clients that are compared run in alternation, round by round, and the one
that goes first alternates too, so that drift in the machine's load hits both
alike.  Every round's number is kept; the report shows the median and the
min-max over the rounds.
"""

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time

from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

from benchmarks import clients
from benchmarks.report import Row, percentile
from benchmarks.workers import ROOT, WorkerProcess, child_environment

#: Measure names for --only, in the order they run.
MEASURES = ('zmq-loop', 'zmq-thread', 'zmq-latency', 'http', 'processes', 'sweep', 'memory')


class Context(object):
    """What the measures share: the options, the workers and a log."""

    def __init__(self, args, log):
        self.args = args
        self.log = log
        self._workers = {}

    def worker(self, kind, processes=1):
        key = (kind, processes)
        if key not in self._workers:
            self.log('starting %s worker%s' % (kind, ' x%d' % processes if kind == 'toto' else ''))
            self._workers[key] = WorkerProcess(kind, processes).start()
        return self._workers[key]

    def workers(self, specs):
        """Start several workers at once; return them in the order asked."""
        launched = []
        for kind, processes in specs:
            if (kind, processes) not in self._workers:
                self.log('starting %s worker x%d' % (kind, processes))
                launched.append(((kind, processes), WorkerProcess(kind, processes).launch()))
        try:
            for key, worker in launched:
                self._workers[key] = worker.wait_ready()
        except BaseException:
            for key, worker in launched:
                worker.stop()
                self._workers.pop(key, None)
            raise
        return [self._workers[spec] for spec in specs]

    def stop_workers(self):
        while self._workers:
            _, worker = self._workers.popitem()
            worker.stop()


def _rotate(round_index, runs):
    """The clients of a round in order: who goes first rotates from round to round."""
    shift = round_index % len(runs)
    return runs[shift:] + runs[:shift]


async def _rounds(ctx, label, runs):
    """Run each ``(name, run)`` of ``runs`` once a round, in rotating order.

    ``run()`` is a coroutine returning a number.  Returns the numbers by
    name, and under ``'cpu'`` the client CPU time per call of each run when
    the runs report it (a :class:`~benchmarks.clients.Rate`).
    """
    values = dict((name, []) for name, _ in runs)
    cpu = dict((name, []) for name, _ in runs)
    for index in range(ctx.args.rounds):
        for name, run in _rotate(index, runs):
            value = await run()
            values[name].append(value)
            cpu[name].append(getattr(value, 'cpu_us', None))
        line = '  %s round %d: %s' % (label, index + 1, ', '.join(
            '%s %.0f' % (name, values[name][-1]) for name, _ in runs))
        if all(cpu[name][-1] is not None for name, _ in runs):
            line += ' (client CPU per call: %s)' % ', '.join(
                '%s %.1f us' % (name, cpu[name][-1]) for name, _ in runs)
        ctx.log(line)
    if all(v is not None for name in cpu for v in cpu[name]):
        values['cpu'] = cpu
    return values


async def _paired_rounds(ctx, label, ours, raw):
    """:func:`_rounds` for the usual pair, ``ours`` and ``raw``."""
    return await _rounds(ctx, label, [('ours', ours), ('raw', raw)])


def _cpu_row(key, title, values, short, baseline='raw'):
    """The client-CPU-per-call row that goes with a throughput row."""
    cpu = values.get('cpu')
    if cpu is None:
        return []
    group = None
    if baseline == 'raw':
        group = 'http-cpu' if key.startswith('http') else 'zmq-cpu'
    return [Row(key, title, 'us CPU', cpu['ours'], cpu[baseline], None, higher=False,
                group=group, short=short)]


def _new_zmq_connection(address, **kwargs):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    kwargs.setdefault('timeout', 60.0)
    return ZMQWorkerConnection(address, **kwargs)


# -- 1. zmq throughput on the loop ------------------------------------------------------

async def zmq_loop(ctx):
    args = ctx.args
    address = ctx.worker('zmq').address
    raw = clients.RawZMQClient(address)
    fast = clients.FastRawZMQClient(address)
    connection = _new_zmq_connection(address)
    ours = clients.zmq_echo(connection)
    try:
        warm = min(args.calls, 2000)
        for call in (raw.echo, fast.echo, ours):
            await clients.throughput(call, warm, args.in_flight)
        values = await _rounds(ctx, 'zmq loop', [
            ('ours', lambda: clients.throughput(ours, args.calls, args.in_flight)),
            ('raw', lambda: clients.throughput(raw.echo, args.calls, args.in_flight)),
            ('fast', lambda: clients.throughput(fast.echo, args.calls, args.in_flight))])
    finally:
        connection.close()
        await raw.close()
        await fast.close()
    return [Row('zmq_throughput_loop',
                'zmq throughput, %d in flight, await on loop' % args.in_flight,
                'calls/s', values['ours'], values['raw'], ('ratio>=', 0.8),
                group='zmq-throughput', short='await on loop')] + \
        _cpu_row('zmq_cpu_loop', '  client CPU per call, await on loop', values,
                 'await on loop') + \
        [Row('zmq_throughput_loop_fast', '  same, raw = fast raw reference (no target)',
             'calls/s', values['ours'], values['fast'], None)] + \
        _cpu_row('zmq_cpu_loop_fast', '  client CPU per call, raw = fast raw reference',
                 values, None, baseline='fast')


# -- 2. zmq throughput with callbacks from a plain thread -------------------------------

async def zmq_thread(ctx):
    args = ctx.args
    address = ctx.worker('zmq').address
    raw = clients.RawZMQClient(address)
    connection = _new_zmq_connection(address)

    async def thread_run():
        # Blocks this loop on purpose: the calls come from a plain thread and
        # their callbacks run on the connection's own I/O thread.
        return clients.thread_callback_throughput(connection, args.calls, args.in_flight)

    try:
        warm = min(args.calls, 2000)
        await clients.throughput(raw.echo, warm, args.in_flight)
        clients.thread_callback_throughput(connection, warm, args.in_flight)
        values = await _paired_rounds(
            ctx, 'zmq thread', thread_run,
            lambda: clients.throughput(raw.echo, args.calls, args.in_flight))
    finally:
        connection.close()
        await raw.close()
    return [Row('zmq_throughput_thread',
                'zmq throughput, %d in flight, thread callbacks' % args.in_flight,
                'calls/s', values['ours'], values['raw'], ('ratio>=', 0.6),
                group='zmq-throughput', short='thread callbacks')] + \
        _cpu_row('zmq_cpu_thread', '  client CPU per call, thread callbacks', values,
                 'thread callbacks')


# -- 3. zmq latency -----------------------------------------------------------------------

async def _latency_rounds(ctx, label, ours, raw, calls, others=()):
    """Median and p99 (microseconds) per round of one-at-a-time callers.

    ``others`` are more ``(name, call)`` pairs measured in the same rotation.
    """
    runs = [('ours', ours), ('raw', raw)] + list(others)
    stats = dict((name, {'median': [], 'p99': []}) for name, _ in runs)
    for index in range(ctx.args.rounds):
        for name, call in _rotate(index, runs):
            times = await clients.latencies(call, calls)
            stats[name]['median'].append(statistics.median(times) * 1e6)
            stats[name]['p99'].append(percentile(times, 0.99) * 1e6)
        ctx.log('  %s round %d: median %s; p99 %s' % (
            label, index + 1,
            ', '.join('%s %.0f us' % (name, stats[name]['median'][-1]) for name, _ in runs),
            ', '.join('%s %.0f us' % (name, stats[name]['p99'][-1]) for name, _ in runs)))
    return stats


async def zmq_latency(ctx):
    args = ctx.args
    address = ctx.worker('zmq').address
    raw = clients.RawZMQClient(address)
    fast = clients.FastRawZMQClient(address)
    connection = _new_zmq_connection(address)
    ours = clients.zmq_echo(connection)
    try:
        warm = min(args.latency_calls, 500)
        for call in (raw.echo, fast.echo, ours):
            await clients.latencies(call, warm)
        stats = await _latency_rounds(ctx, 'zmq latency', ours, raw.echo, args.latency_calls,
                                      [('fast', fast.echo)])
    finally:
        connection.close()
        await raw.close()
        await fast.close()
    return [
        Row('zmq_latency_median', 'zmq latency, one at a time, median', 'us',
            stats['ours']['median'], stats['raw']['median'], ('ratio<=', 1.3), higher=False,
            group='zmq-latency', short='median'),
        Row('zmq_latency_p99', 'zmq latency, one at a time, p99', 'us',
            stats['ours']['p99'], stats['raw']['p99'], ('ratio<=', 1.3), higher=False,
            group='zmq-latency', short='p99'),
        Row('zmq_latency_median_fast', '  median, raw = fast raw reference (no target)', 'us',
            stats['ours']['median'], stats['fast']['median'], None, higher=False),
    ]


# -- 4. http -------------------------------------------------------------------------------

def curl_available():
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return False
    return True


def _configure_http_client(kind, max_clients):
    """Make ``AsyncHTTPClient()`` a new client of ``kind`` ('simple' or 'curl')."""
    # The client is cached per loop: close it so the next one is built anew.
    AsyncHTTPClient().close()
    implementation = 'tornado.curl_httpclient.CurlAsyncHTTPClient' if kind == 'curl' else None
    AsyncHTTPClient.configure(implementation, max_clients=max_clients)


async def http(ctx):
    from toto.httpworkerconnection import HTTPWorkerConnection

    args = ctx.args
    url = ctx.worker('http').address
    kinds = ['simple'] + (['curl'] if curl_available() else [])
    if len(kinds) == 1:
        ctx.log('  pycurl is not importable: no keep-alive (curl) measures')
    connection = HTTPWorkerConnection(url, timeout=60.0)
    ours = clients.http_echo(connection)
    raw = clients.RawHTTPClient(url, timeout=60.0)
    rows = []
    try:
        for kind in kinds:
            _configure_http_client(kind, max(10, args.http_in_flight))
            label = 'http %s' % kind
            description = ('tornado simple client, a connection per call' if kind == 'simple'
                           else 'tornado curl client, keep-alive')
            warm = min(args.http_calls, 200)
            await clients.throughput(raw.echo, warm, args.http_in_flight)
            await clients.throughput(ours, warm, args.http_in_flight)
            values = await _paired_rounds(
                ctx, label,
                lambda: clients.throughput(ours, args.http_calls, args.http_in_flight),
                lambda: clients.throughput(raw.echo, args.http_calls, args.http_in_flight))
            stats = await _latency_rounds(ctx, label, ours, raw.echo, args.http_latency_calls)
            prefix = 'http_%s' % kind
            rows += [
                Row(prefix + '_throughput', 'http throughput, %d in flight, %s'
                    % (args.http_in_flight, kind), 'calls/s', values['ours'],
                    values['raw'], ('ratio>=', 0.95), group='http-throughput',
                    short=description.replace('tornado ', '').replace(', ', '\n')),
            ] + _cpu_row(prefix + '_cpu', '  client CPU per call, %s' % kind, values,
                         '%s client' % kind) + [
                Row(prefix + '_latency_median', 'http latency, one at a time, median, %s'
                    % kind, 'us', stats['ours']['median'], stats['raw']['median'],
                    ('ratio<=', 1 / 0.95), higher=False, group='http-latency',
                    short='%s median' % kind),
                Row(prefix + '_latency_p99', 'http latency, one at a time, p99, %s' % kind,
                    'us', stats['ours']['p99'], stats['raw']['p99'], None, higher=False,
                    group='http-latency', short='%s p99' % kind),
            ]
    finally:
        _configure_http_client('simple', 10)
    return rows


# -- 7. worker processes -------------------------------------------------------------------

def group_cpu_seconds(group):
    """CPU seconds used so far by the live processes of process group ``group`` (Linux)."""
    total = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % pid) as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except (IOError, OSError, IndexError):
            continue
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
    return total / float(os.sysconf('SC_CLK_TCK'))


async def processes(ctx):
    args = ctx.args
    one, many = ctx.workers([('toto', 1), ('toto', args.cpu_processes)])
    services = {'one': one, 'many': many}
    connections = {'one': _new_zmq_connection(one.address),
                   'many': _new_zmq_connection(many.address)}
    pids = {'one': set(), 'many': set()}
    cores = {'one': [], 'many': []}

    def runner(name):
        invoke = connections[name].invoke
        group = services[name].process.pid  # the service leads its own process group

        def call():
            return invoke('burn', {}, await_=True)

        def check(result):
            if not isinstance(result, dict) or 'pid' not in result:
                raise clients.CallFailed('unexpected answer: %r' % (result,))
            pids[name].add(result['pid'])

        async def run():
            used = group_cpu_seconds(group)
            started = time.perf_counter()
            rate = await clients.throughput(call, args.cpu_calls, args.in_flight, check)
            # How many cores the service kept busy: with a CPU-bound method
            # the scaling can only be as good as the cores left free.
            cores[name].append((group_cpu_seconds(group) - used)
                               / (time.perf_counter() - started))
            return float(rate)

        return run

    try:
        for name in ('one', 'many'):
            await runner(name)()
            pids[name].clear()
            cores[name] = []
        values = await _paired_rounds(ctx, 'processes', runner('many'), runner('one'))
    finally:
        for connection in connections.values():
            connection.close()
    ctx.log('  cores the service used per round: %d processes %s; 1 process %s'
            % (args.cpu_processes, ' '.join('%.2f' % c for c in cores['many']),
               ' '.join('%.2f' % c for c in cores['one'])))
    return [Row('processes_scaling',
                'worker processes, ~2 ms CPU method: %d (ours) vs 1 (raw)'
                % args.cpu_processes,
                'calls/s', values['ours'], values['raw'], ('ratio>=', 1.8),
                extra={'processes_answering': {'one': len(pids['one']),
                                               'many': len(pids['many'])},
                       'service_cores_used': cores})]


# -- 5. timeout sweep ----------------------------------------------------------------------

def _channel_of(connection, loop):
    """The connection's per-loop state that owns the sweep (a private detail)."""
    channels = getattr(connection, '_channels', None)
    # Channels are keyed by the loop identity the connection uses: the
    # asyncio loop under Tornado 6, the IOLoop itself on Python 2.
    loop = getattr(loop, 'asyncio_loop', loop)
    if not isinstance(channels, dict) or loop not in channels:
        raise RuntimeError('cannot find the channel of this loop in %r: '
                           'adjust benchmarks/measures.py to the new internals' % (connection,))
    channel = channels[loop]
    if not callable(getattr(channel, '_sweep', None)):
        raise RuntimeError('the channel has no _sweep(): adjust benchmarks/measures.py')
    return channel


class _ClockAhead(object):
    """Move the loop's clock ahead by ``seconds`` while the block runs."""

    def __init__(self, loop, seconds):
        self.loop = loop
        self.seconds = seconds

    def __enter__(self):
        real = type(self.loop).time
        loop, seconds = self.loop, self.seconds
        self.loop.time = lambda: real(loop) + seconds

    def __exit__(self, *exc_info):
        del self.loop.time


async def _submit(connection, count, timeout, batch=1000):
    """Submit ``count`` awaitable calls from this coroutine; return their Futures."""
    futures = []
    invoke = connection.invoke
    while len(futures) < count:
        for _ in range(min(batch, count - len(futures))):
            futures.append(invoke(clients.METHOD, clients.PARAMETERS, timeout=timeout,
                                  await_=True))
        # Let the connection's socket handler run, as it would in an app.
        await asyncio.sleep(0.001)
    return futures


async def sweep(ctx):
    args = ctx.args
    address = ctx.worker('sink').address
    long_timeout = 3600.0
    short_timeout = 1000.0
    loop = IOLoop.current()
    connection = _new_zmq_connection(address, timeout=long_timeout)
    try:
        started = time.perf_counter()
        pending = await _submit(connection, args.sweep_pending, long_timeout)
        submit_rate = len(pending) / (time.perf_counter() - started)
        ctx.log('  submitted %d calls that nobody answers (%.0f calls/s)'
                % (len(pending), submit_rate))
        channel = _channel_of(connection, loop)
        none_expired, some_expired = [], []
        for index in range(args.rounds):
            gc.collect()
            start = time.perf_counter()
            for _ in range(args.sweeps):
                channel._sweep()
            none_expired.append((time.perf_counter() - start) / args.sweeps * 1000.0)
            if any(future.done() for future in pending[-100:]):
                raise RuntimeError('a call with a long timeout completed during the sweep')

            expiring = await _submit(connection, args.sweep_expired, short_timeout)
            gc.collect()
            with _ClockAhead(loop, (short_timeout + long_timeout) / 2):
                start = time.perf_counter()
                channel._sweep()
                some_expired.append((time.perf_counter() - start) * 1000.0)
            timed_out = sum(1 for future in expiring
                            if future.done() and future.result() == {'error': 'timeout'})
            if timed_out != len(expiring):
                raise RuntimeError('only %d of %d calls timed out in the sweep'
                                   % (timed_out, len(expiring)))
            ctx.log('  sweep round %d: %.4f ms with none expired, %.3f ms with %d expired '
                    '(%d pending)' % (index + 1, none_expired[-1], some_expired[-1],
                                      len(expiring), len(connection)))
        left = len(connection)
    finally:
        connection.close()
    return [
        Row('sweep_none_expired', 'timeout sweep, %d pending, none expired'
            % args.sweep_pending, 'ms/sweep', none_expired, None, ('ours<', 1.0),
            higher=False, extra={'submit_calls_per_second': submit_rate,
                                 'pending_during_sweep': left}),
        Row('sweep_some_expired', 'timeout sweep, %d pending, %d expired'
            % (args.sweep_pending, args.sweep_expired), 'ms/sweep', some_expired, None,
            None, higher=False),
    ]


# -- 6. memory -----------------------------------------------------------------------------

async def memory(ctx):
    args = ctx.args
    address = ctx.worker('zmq').address
    warmup = args.memory_warmup
    ctx.log('  %d calls after %d warm-up calls, in a fresh process' % (args.memory_calls, warmup))
    command = [sys.executable, '-m', 'benchmarks.memory_probe', address,
               '--calls', str(args.memory_calls), '--warmup', str(warmup),
               '--in-flight', str(args.in_flight)]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=child_environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError('memory probe failed (%s): %s'
                           % (process.returncode, err.decode('utf-8', 'replace')[-2000:]))
    result = json.loads(out.decode('utf-8').strip().splitlines()[-1])
    ctx.log('  RSS %d KiB after warm-up, %d KiB at the end (%.0f calls/s)'
            % (result['rss_after_warmup_kib'], result['rss_at_end_kib'],
               result['calls_per_second']))
    return [
        Row('memory_rss_growth', 'memory: RSS growth over %d calls'
            % args.memory_calls, 'MB', [result['rss_growth_mb']], None, ('ours<', 5.0),
            higher=False, extra=result),
        Row('memory_pending_at_end', 'memory: len(conn) after %d calls' % args.memory_calls,
            'calls', [result['pending_at_end']], None, ('ours==', 0), higher=False),
    ]


RUNNERS = {
    'zmq-loop': zmq_loop,
    'zmq-thread': zmq_thread,
    'zmq-latency': zmq_latency,
    'http': http,
    'processes': processes,
    'sweep': sweep,
    'memory': memory,
}

assert tuple(RUNNERS) == MEASURES
