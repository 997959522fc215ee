"""How the worker service hands out calls: balanced dispatch against the queue mode.

    python -m benchmarks.dispatch                       # every measure, 3 rounds
    python -m benchmarks.dispatch --only echo --rounds 5
    python -m benchmarks.dispatch --markdown            # the table for docs/performance.rst

Every measure runs real services (``toto.worker.TotoWorkerService`` started by
:mod:`benchmarks.workers`) in both modes on the same machine and alternates
them round by round; the table shows the balanced router (the default) next
to ``--dispatch=queue`` (the original's queue device and ``REP`` workers):

``mixed``
    4 worker processes; one client sends a 1 ms call every 5 ms and a 1 s call
    every 0.5 s for ``--mixed-seconds``: the latency of the quick calls.
``echo``
    calls/s of ``echo`` with ``--in-flight`` calls outstanding, through 1, 2
    and 4 worker processes, and the CPU time the whole service (router and
    workers) spends per call.  ``--forwarder`` adds the queue mode's worker
    processes behind a router that is plain Python moving frames with no
    decision (``benchmarks.workers forwarder``): what routing in Python
    costs before any dispatch logic.
``coroutine``
    one worker process, 10 ms waits, ``--coroutine-in-flight`` calls
    outstanding: calls/s of a coroutine method (``yield gen.sleep``) and of
    the same wait written as ``time.sleep``, and their ratio with balanced
    dispatch.  The queue mode awaits coroutines one at a time.
"""

import argparse
import asyncio
import os
import sys
import time

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report  # noqa: E402
from benchmarks.measures import _rotate, group_cpu_seconds  # noqa: E402
from benchmarks.workers import WorkerProcess  # noqa: E402

MODES = ('balanced', 'queue')
MEASURES = ('mixed', 'echo', 'coroutine')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.dispatch',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--only', default=','.join(MEASURES),
                        help='measures to run, comma separated (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--mixed-seconds', type=float, default=5.0)
    parser.add_argument('--echo-calls', type=int, default=20000)
    parser.add_argument('--in-flight', type=int, default=100)
    parser.add_argument('--processes', default='1,2,4',
                        help='worker processes for the echo measure (default: %(default)s)')
    parser.add_argument('--coroutine-seconds', type=float, default=3.0)
    parser.add_argument('--coroutine-in-flight', type=int, default=200)
    parser.add_argument('--forwarder', action='store_true',
                        help='echo: also compare with queue workers behind a plain Python '
                             'forwarder')
    parser.add_argument('--markdown', action='store_true', help='print the table as markdown')
    parser.add_argument('--json', help='also write the summaries here')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    return parser.parse_args(argv)


def _connection(address):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    return ZMQWorkerConnection(address, timeout=60.0)


def _services(processes, options=()):
    """A started service per mode, as a dict."""
    started = {}
    try:
        for mode in MODES:
            started[mode] = WorkerProcess('toto', processes,
                                          ['--dispatch', mode] + list(options)).start()
    except BaseException:
        for service in started.values():
            service.stop()
        raise
    return started


async def _keep_in_flight(invoke, count, in_flight, seconds=None):
    """Make ``count`` calls (or calls for ``seconds``), ``in_flight`` at a time.

    Returns (calls answered, seconds taken).  An answer that is not the
    method's is an error: the measure is then worthless.
    """
    started = time.perf_counter()
    deadline = started + seconds if seconds else None
    done = 0
    pending = set()
    sent = 0
    while True:
        while len(pending) < in_flight and (deadline is None and sent < count or
                                            deadline is not None and
                                            time.perf_counter() < deadline):
            pending.add(asyncio.ensure_future(invoke()))
            sent += 1
        if not pending:
            break
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for future in finished:
            answer = future.result()
            if isinstance(answer, dict) and 'error' in answer:
                raise RuntimeError('a call failed: %r' % (answer,))
            done += 1
    return done, time.perf_counter() - started


# -- mixed load ---------------------------------------------------------------------------

async def _mixed_once(connection, seconds):
    loop = asyncio.get_running_loop()
    quick = []

    async def timed(parameters, into):
        started = time.perf_counter()
        answer = await connection.invoke('pause', parameters, await_=True)
        if not isinstance(answer, dict) or 'error' in answer:
            raise RuntimeError('a call failed: %r' % (answer,))
        if into is not None:
            into.append(time.perf_counter() - started)

    calls = []
    start = loop.time() + 0.05
    for index in range(int(seconds / 0.005)):
        calls.append(_at(loop, start + index * 0.005, timed({'seconds': 0.001}, quick)))
    for index in range(int(seconds / 0.5)):
        calls.append(_at(loop, start + index * 0.5, timed({'seconds': 1.0}, None)))
    await asyncio.gather(*calls)
    return quick


async def _at(loop, when, call):
    await asyncio.sleep(max(0.0, when - loop.time()))
    await call


async def mixed(args, log):
    services = _services(4)
    try:
        connections = dict((mode, _connection(services[mode].address)) for mode in MODES)
        results = dict((mode, {'p50': [], 'p90': [], 'p99': []}) for mode in MODES)
        for index in range(args.rounds):
            for mode in _rotate(index, MODES):
                quick = await _mixed_once(connections[mode], args.mixed_seconds)
                for name, fraction in (('p50', 0.5), ('p90', 0.9), ('p99', 0.99)):
                    results[mode][name].append(1000 * report.percentile(quick, fraction))
            log('  mixed round %d: quick calls p99 %s' % (index + 1, ', '.join(
                '%s %.1f ms' % (mode, results[mode]['p99'][-1]) for mode in MODES)))
        for connection in connections.values():
            connection.close()
    finally:
        for service in services.values():
            service.stop()
    rows = []
    for name in ('p50', 'p90', 'p99'):
        target = ('ours<=', 20.0) if name == 'p99' else None
        rows.append(report.Row('mixed-' + name, 'mixed load, 4 processes: quick calls %s'
                               % name, 'ms', results['balanced'][name],
                               results['queue'][name], target, higher=False))
    return rows


# -- echo throughput ----------------------------------------------------------------------

async def echo(args, log):
    rows = []
    for processes in [int(n) for n in args.processes.split(',')]:
        setups = list(MODES) + (['forwarder'] if args.forwarder else [])
        services = _services(processes)
        groups = dict((mode, [services[mode]]) for mode in MODES)
        try:
            if args.forwarder:
                groups['forwarder'] = _behind_forwarder(processes)
            connections = dict((setup, _connection(groups[setup][0].address))
                               for setup in setups)
            rates = dict((setup, []) for setup in setups)
            cpu = dict((setup, []) for setup in setups)
            for setup in setups:  # a warm-up: every process has taken calls
                await _echo_run(connections[setup], 2000, args.in_flight)
            for index in range(args.rounds):
                for setup in _rotate(index, setups):
                    before = _cpu_seconds(groups[setup])
                    calls, elapsed = await _echo_run(connections[setup], args.echo_calls,
                                                     args.in_flight)
                    rates[setup].append(calls / elapsed)
                    cpu[setup].append(1e6 * (_cpu_seconds(groups[setup]) - before) / calls)
                log('  echo %d processes round %d: %s' % (processes, index + 1, ', '.join(
                    '%s %.0f calls/s (service CPU %.1f us/call)'
                    % (setup, rates[setup][-1], cpu[setup][-1]) for setup in setups)))
            for connection in connections.values():
                connection.close()
        finally:
            for group in groups.values():
                for service in group:
                    service.stop()
        rows.append(report.Row('echo-%d' % processes, 'echo, %d processes' % processes,
                               'calls/s', rates['balanced'], rates['queue'],
                               ('ratio>=', 0.9)))
        rows.append(report.Row('echo-%d-cpu' % processes,
                               'echo, %d processes: service CPU per call' % processes,
                               'us CPU', cpu['balanced'], cpu['queue'], higher=False))
        if args.forwarder:
            rows.append(report.Row('echo-%d-fwd' % processes,
                                   '  same, queue = behind a plain Python forwarder',
                                   'calls/s', rates['balanced'], rates['forwarder']))
            rows.append(report.Row('echo-%d-fwd-cpu' % processes,
                                   '  service CPU per call, queue = the forwarder',
                                   'us CPU', cpu['balanced'], cpu['forwarder'],
                                   higher=False))
    return rows


def _behind_forwarder(processes):
    """A forwarder, and queue worker processes behind it: [forwarder, workers]."""
    import tempfile
    directory = tempfile.mkdtemp(prefix='toto-forward-')
    socket_address = 'ipc://%s/workers.sock' % directory
    forwarder = WorkerProcess('forwarder', options=['--socket-address', socket_address])
    forwarder.start()
    try:
        workers = WorkerProcess('toto', processes, ['--dispatch', 'queue',
                                                    '--socket-address', socket_address],
                                behind=forwarder.address).start()
    except BaseException:
        forwarder.stop()
        raise
    return [forwarder, workers]


def _cpu_seconds(group):
    """CPU seconds used so far by these services' process groups."""
    return sum(group_cpu_seconds(service.process.pid) for service in group)


async def _echo_run(connection, calls, in_flight):
    def invoke():
        return connection.invoke('echo', {'n': 1}, await_=True)
    return await _keep_in_flight(invoke, calls, in_flight)


# -- coroutine methods --------------------------------------------------------------------

async def coroutine(args, log):
    services = _services(1)
    try:
        connections = dict((mode, _connection(services[mode].address)) for mode in MODES)
        rates = dict(((mode, method), []) for mode in MODES for method in ('nap', 'pause'))
        for index in range(args.rounds):
            for mode in _rotate(index, MODES):
                for method in ('nap', 'pause'):
                    rates[mode, method].append(await _waits(
                        connections[mode], method, args.coroutine_seconds,
                        args.coroutine_in_flight))
            log('  coroutine round %d: %s' % (index + 1, ', '.join(
                '%s %s %.0f calls/s' % (mode, method, rates[mode, method][-1])
                for mode in MODES for method in ('nap', 'pause'))))
        for connection in connections.values():
            connection.close()
    finally:
        for service in services.values():
            service.stop()
    gains = [nap / pause for nap, pause in zip(rates['balanced', 'nap'],
                                               rates['balanced', 'pause'])]
    return [
        report.Row('coroutine', '10 ms waits, 1 process: coroutine method', 'calls/s',
                   rates['balanced', 'nap'], rates['queue', 'nap']),
        report.Row('blocking', '10 ms waits, 1 process: time.sleep method', 'calls/s',
                   rates['balanced', 'pause'], rates['queue', 'pause']),
        report.Row('coroutine-gain', 'balanced: coroutine calls/s per time.sleep calls/s',
                   'x', gains, None, ('ours>=', 50)),
    ]


async def _waits(connection, method, seconds, in_flight):
    def invoke():
        return connection.invoke(method, {'seconds': 0.01}, await_=True)
    calls, elapsed = await _keep_in_flight(invoke, None, in_flight, seconds)
    return calls / elapsed


# -- the command --------------------------------------------------------------------------

async def run(args):
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    chosen = [name.strip() for name in args.only.split(',') if name.strip()]
    unknown = set(chosen) - set(MEASURES)
    if unknown:
        raise SystemExit('unknown measures: %s (known: %s)'
                         % (', '.join(sorted(unknown)), ', '.join(MEASURES)))
    rows = []
    for name in MEASURES:
        if name in chosen:
            log('%s ...' % name)
            rows.extend(await globals()[name](args, log))
    return rows


def main(argv=None):
    args = parse_args(argv)
    rows = asyncio.run(run(args))
    measures = dict((row.key, row.summary()) for row in rows)
    labels = ('balanced', 'queue')
    print()
    print('balanced: --dispatch=balanced (the default); queue: --dispatch=queue '
          '(the original protocol); %d rounds, medians' % args.rounds)
    if args.markdown:
        print(report.format_markdown(measures, labels))
    else:
        print(report.format_table(measures, labels))
    if args.json:
        report.write_json(args.json, {'measures': measures, 'labels': labels,
                                      'rounds': args.rounds})


if __name__ == '__main__':
    main()
