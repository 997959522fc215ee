"""Profile one client of the benchmarks with cProfile.

    python -m benchmarks.profile_client zmq-ours --calls 20000 --top 25

starts the matching echo worker in its own process, warms the client up,
then profiles ``--calls`` calls (``--in-flight`` at a time, or one at a time
with ``--latency``) on the event loop and prints the functions by own time
(``--sort``).  Clients: ``zmq-ours`` (ZMQWorkerConnection awaited on the
loop), ``zmq-raw`` (raw pyzmq asyncio DEALER), ``zmq-fast`` (the fast raw
reference), ``http-ours``
(HTTPWorkerConnection), ``http-raw`` (raw AsyncHTTPClient); ``--curl`` uses
Tornado's curl client for both http ones.  ``zmq-thread`` (callbacks, calls
from a plain thread) spans threads, which cProfile cannot follow: it runs
without cProfile, to be sampled with py-spy::

    py-spy record --threads -f raw -o zmq-thread.txt -- \
        python -m benchmarks.profile_client zmq-thread --calls 200000
"""

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time

CLIENTS = ('zmq-ours', 'zmq-raw', 'zmq-fast', 'zmq-thread', 'http-ours', 'http-raw')


async def _profile(args, address):
    from tornado.httpclient import AsyncHTTPClient

    from benchmarks import clients

    cleanup = None
    if args.client.startswith('http'):
        if args.curl:
            AsyncHTTPClient.configure('tornado.curl_httpclient.CurlAsyncHTTPClient',
                                      max_clients=max(10, args.in_flight))
        else:
            AsyncHTTPClient.configure(None, max_clients=max(10, args.in_flight))
    if args.client == 'zmq-thread':
        from toto.zmqworkerconnection import ZMQWorkerConnection
        connection = ZMQWorkerConnection(address, timeout=60.0)
        clients.thread_callback_throughput(connection, min(args.calls, 2000), args.in_flight)
        started = time.perf_counter()
        clients.thread_callback_throughput(connection, args.calls, args.in_flight)
        elapsed = time.perf_counter() - started
        connection.close()
        return None, elapsed
    if args.client == 'zmq-ours':
        from toto.zmqworkerconnection import ZMQWorkerConnection
        connection = ZMQWorkerConnection(address, timeout=60.0)
        call = clients.zmq_echo(connection)

        async def cleanup():
            connection.close()
    elif args.client == 'zmq-fast':
        fast = clients.FastRawZMQClient(address)
        call = fast.echo
        cleanup = fast.close
    elif args.client == 'zmq-raw':
        raw = clients.RawZMQClient(address)
        call = raw.echo
        cleanup = raw.close
    elif args.client == 'http-ours':
        from toto.httpworkerconnection import HTTPWorkerConnection
        call = clients.http_echo(HTTPWorkerConnection(address, timeout=60.0))
    else:
        call = clients.RawHTTPClient(address, timeout=60.0).echo

    async def run(calls):
        if args.latency:
            await clients.latencies(call, calls)
        else:
            await clients.throughput(call, calls, args.in_flight)

    try:
        await run(min(args.calls, 2000))
        profiler = None if args.no_cprofile else cProfile.Profile()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await run(args.calls)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - started
    finally:
        if cleanup is not None:
            await cleanup()
    return profiler, elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.profile_client',
                                     description='Profile one benchmark client with cProfile.')
    parser.add_argument('client', choices=CLIENTS)
    parser.add_argument('--calls', type=int, default=20000)
    parser.add_argument('--in-flight', type=int, default=100)
    parser.add_argument('--latency', action='store_true', help='one call at a time')
    parser.add_argument('--curl', action='store_true', help='http: Tornado curl client')
    parser.add_argument('--sort', default='tottime', help='pstats sort key')
    parser.add_argument('--top', type=int, default=30)
    parser.add_argument('--output', help='also save the raw profile here (for snakeviz etc.)')
    parser.add_argument('--no-cprofile', action='store_true',
                        help='run without cProfile (to sample the process with py-spy)')
    args = parser.parse_args(argv)

    from benchmarks.workers import WorkerProcess

    kind = 'http' if args.client.startswith('http') else 'zmq'
    with WorkerProcess(kind) as worker:
        profiler, elapsed = asyncio.run(_profile(args, worker.address))
    summary = ('%s: %d calls in %.2f s%s (%.0f calls/s, %.1f us/call)\n'
               % (args.client, args.calls, elapsed,
                  '' if profiler is None else ' under the profiler',
                  args.calls / elapsed, elapsed / args.calls * 1e6))
    if profiler is None:
        sys.stdout.write(summary)
        return
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats(args.sort).print_stats(args.top)
    if args.output:
        stats.dump_stats(args.output)
    sys.stdout.write(summary)
    sys.stdout.write(text.getvalue())


if __name__ == '__main__':
    main()
