"""Run the benchmarks: ``python -m benchmarks`` or ``python benchmarks/run.py``.

Starts its own echo workers on free loopback ports, each in a process of its
own, measures toto's connections and the raw clients in alternation for
several rounds, prints a table of medians, ratios and min-max over the
rounds, and writes it as JSON (and as a PNG chart when matplotlib is
installed).  ``--help`` lists the options; ``--quick`` runs everything on
tiny sizes (for the smoke test: its numbers mean nothing).

The issue asks for memory over 1,000,000 calls; the default run makes
``--memory-calls=200000`` to stay under two minutes.  Run
``python -m benchmarks --only memory --memory-calls 1000000`` for the full one.
"""

import argparse
import asyncio
import datetime
import os
import platform
import sys
import time

if __package__ in (None, ''):
    # Run as a script: import the package from this checkout, and keep this
    # folder's modules from shadowing others.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _here]
    sys.path.insert(0, os.path.dirname(_here))

from benchmarks import report  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')

DEFAULTS = dict(rounds=5, calls=10000, in_flight=100, latency_calls=2000,
                http_calls=1000, http_in_flight=20, http_latency_calls=300,
                sweep_pending=100000, sweep_expired=1000, sweeps=200,
                memory_calls=200000, memory_warmup=20000,
                cpu_calls=400, cpu_processes=4)

QUICK = dict(rounds=1, calls=300, latency_calls=50, http_calls=40,
             http_latency_calls=20, sweep_pending=2000, sweep_expired=100, sweeps=5,
             memory_calls=2000, memory_warmup=500, cpu_calls=16)


def parse_args(argv=None):
    from benchmarks.measures import MEASURES

    parser = argparse.ArgumentParser(
        prog='python -m benchmarks',
        description='Measure toto worker connections against raw pyzmq and raw Tornado '
                    'clients, on echo workers this command starts itself.')
    add = parser.add_argument
    add('--rounds', type=int, help='rounds per measure')
    add('--calls', type=int, help='zmq calls per client per round for throughput')
    add('--in-flight', type=int, help='zmq calls in flight for throughput')
    add('--latency-calls', type=int, help='zmq calls per client per round for latency')
    add('--http-calls', type=int, help='http calls per client per round for throughput')
    add('--http-in-flight', type=int, help='http calls in flight for throughput')
    add('--http-latency-calls', type=int, help='http calls per client per round for latency')
    add('--sweep-pending', type=int, help='calls pending during the timeout sweep')
    add('--sweep-expired', type=int, help='expired calls in the second sweep measure')
    add('--sweeps', type=int, help='sweeps timed per round with none expired')
    add('--memory-calls', type=int,
        help='calls of the memory measure (the issue asks for 1000000)')
    add('--memory-warmup', type=int, help='warm-up calls before the memory baseline')
    add('--cpu-calls', type=int, help='calls per round of the worker processes measure')
    add('--cpu-processes', type=int, help='worker processes compared with 1')
    add('--quick', action='store_true', help='tiny sizes, one round (smoke test)')
    add('--only', action='append', metavar='MEASURE[,MEASURE]',
        help='run only these measures: %s' % ', '.join(MEASURES))
    add('--json', default=os.path.join(RESULTS, 'latest.json'),
        help='where to write the results (default: benchmarks/results/latest.json)')
    add('--chart', default=os.path.join(RESULTS, 'chart.png'),
        help='where to draw the chart if matplotlib is installed '
             '(default: benchmarks/results/chart.png; "" for none)')
    add('--quiet', action='store_true', help='print only the table')
    for action in parser._actions:
        if action.dest in DEFAULTS:
            action.help += ' (default %s, --quick %s)' % (
                DEFAULTS[action.dest], QUICK.get(action.dest, DEFAULTS[action.dest]))
    args = parser.parse_args(argv)
    sizes = dict(DEFAULTS)
    if args.quick:
        sizes.update(QUICK)
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in sizes:
        if getattr(args, name) < (0 if name == 'sweep_expired' else 1):
            parser.error('--%s must be positive' % name.replace('_', '-'))
    selected = []
    for item in args.only or []:
        for name in item.split(','):
            name = name.strip()
            if name not in MEASURES:
                parser.error('unknown measure %r: choose from %s' % (name, ', '.join(MEASURES)))
            selected.append(name)
    args.only = [name for name in MEASURES if name in selected] if selected else list(MEASURES)
    return args


def cpu_pressure():
    """The kernel's CPU pressure (share of time some task waited for a CPU), or None."""
    try:
        with open('/proc/pressure/cpu') as pressure:
            fields = pressure.readline().split()
    except (IOError, OSError):
        return None
    return dict((k, float(v)) for k, v in (f.split('=') for f in fields[1:]) if k != 'total')


def _versions():
    import tornado
    import zmq
    return {'python': platform.python_version(), 'tornado': tornado.version,
            'pyzmq': zmq.__version__, 'libzmq': zmq.zmq_version(),
            'platform': platform.platform(), 'cpus': os.cpu_count()}


async def run_measures(args, log):
    from benchmarks.measures import RUNNERS, Context

    ctx = Context(args, log)
    rows, failures = [], {}
    try:
        for name in args.only:
            log('%s ...' % name)
            started = time.time()
            try:
                rows += await RUNNERS[name](ctx)
            except Exception as error:  # report it, go on with the others
                failures[name] = '%s: %s' % (type(error).__name__, error)
                log('  FAILED: %s' % failures[name])
            log('  (%.1f s)' % (time.time() - started))
    finally:
        ctx.stop_workers()
    return rows, failures


def main(argv=None):
    args = parse_args(argv)

    def log(message):
        if not args.quiet:
            sys.stderr.write(message + '\n')
            sys.stderr.flush()

    started = time.time()
    load_before = os.getloadavg()
    pressure_before = cpu_pressure()
    rows, failures = asyncio.run(run_measures(args, log))
    measures = dict((row.key, row.summary()) for row in rows)
    document = {
        'meta': dict(_versions(),
                     date=datetime.datetime.now().isoformat(timespec='seconds'),
                     command=' '.join(['python -m benchmarks'] + list(argv if argv is not None
                                                                       else sys.argv[1:])),
                     seconds=round(time.time() - started, 1),
                     load_average_before=load_before, load_average_after=os.getloadavg(),
                     cpu_pressure_before=pressure_before, cpu_pressure_after=cpu_pressure(),
                     options=dict((name, getattr(args, name)) for name in DEFAULTS),
                     quick=args.quick, measures_run=args.only),
        'measures': measures,
        'failures': failures,
    }
    print(report.format_table(measures))
    for name, failure in failures.items():
        print('FAILED %s: %s' % (name, failure))
    if args.json:
        report.write_json(args.json, document)
        log('results written to %s' % args.json)
    if args.chart:
        if report.write_chart(args.chart, measures):
            log('chart drawn in %s' % args.chart)
        else:
            log('no chart: matplotlib is not installed')
    log('%.0f s in all; load average before %s, after %s'
        % (time.time() - started, ' '.join('%.2f' % v for v in load_before),
           ' '.join('%.2f' % v for v in os.getloadavg())))
    pressure = document['meta']['cpu_pressure_after']
    if pressure:
        log('CPU pressure (%% of time a task waited for a CPU, 10 s / 60 s): %.0f / %.0f'
            % (pressure['avg10'], pressure['avg60']))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
