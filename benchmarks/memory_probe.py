"""Memory over many calls, measured in a fresh process.

``python -m benchmarks.memory_probe ADDRESS --calls N`` makes N echo calls
through a :class:`~toto.zmqworkerconnection.ZMQWorkerConnection` (awaited on
the running loop, ``--in-flight`` at a time) after a warm-up, and prints one
JSON line: the resident set size (``VmRSS``) after the warm-up and at the
end, samples along the way, and ``len(conn)`` at the end.  A process of its
own keeps what the other measures allocated out of the numbers.
"""

import argparse
import asyncio
import gc
import json
import sys
import time


def rss_kib():
    """This process's resident set size in KiB, from /proc/self/status."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS in /proc/self/status')


async def probe(address, calls, warmup, in_flight, samples):
    from toto.zmqworkerconnection import ZMQWorkerConnection

    from benchmarks import clients

    connection = ZMQWorkerConnection(address, timeout=60.0)
    try:
        echo = clients.zmq_echo(connection)
        await clients.throughput(echo, warmup, in_flight)
        gc.collect()
        start_rss = rss_kib()
        points = [(0, start_rss)]
        chunk = max(1, calls // samples)
        done = 0
        started = time.perf_counter()
        while done < calls:
            step = min(chunk, calls - done)
            await clients.throughput(echo, step, in_flight)
            done += step
            points.append((done, rss_kib()))
        elapsed = time.perf_counter() - started
        gc.collect()
        end_rss = rss_kib()
        pending = len(connection)
    finally:
        connection.close()
    return {
        'calls': calls,
        'warmup_calls': warmup,
        'in_flight': in_flight,
        'rss_after_warmup_kib': start_rss,
        'rss_at_end_kib': end_rss,
        'rss_growth_mb': (end_rss - start_rss) / 1024.0,
        'rss_samples_kib': points,
        'pending_at_end': pending,
        'calls_per_second': calls / elapsed,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.memory_probe')
    parser.add_argument('address')
    parser.add_argument('--calls', type=int, default=200000)
    parser.add_argument('--warmup', type=int, default=20000)
    parser.add_argument('--in-flight', type=int, default=100)
    parser.add_argument('--samples', type=int, default=10)
    args = parser.parse_args(argv)
    result = asyncio.run(probe(args.address, args.calls, args.warmup, args.in_flight,
                               args.samples))
    sys.stdout.write(json.dumps(result) + '\n')


if __name__ == '__main__':
    main()
