"""Echo workers for the benchmarks, each in a process of its own.

Run as a program (``python -m benchmarks.workers KIND ...``) in a child
process, so that the benchmark process measures only the client side:

``zmq``
    A raw pyzmq ``ROUTER`` bound on a free loopback port.  It answers
    ``[identity, b'', id, payload]`` with
    ``[identity, b'', id, pickle.dumps(loads(payload)['parameters'], 2)]``:
    every call is decoded and re-encoded, the same work whichever client sent
    it.
``sink``
    A ``ROUTER`` that reads every call and never answers (for the timeout
    sweep measure: sends succeed, nothing comes back).
``http``
    A Tornado HTTP server running :func:`toto.httpworker.make_application`
    on :mod:`benchmarks.echo_methods`.
``toto``
    :class:`toto.worker.TotoWorkerService` with ``--processes=N`` on
    :mod:`benchmarks.echo_methods` (its router and N worker processes, or
    only the worker processes, behind a forwarder).
``forwarder``
    A router written in plain Python that moves frames between a ``ROUTER``
    and a ``DEALER`` with no decision: the floor that any Python router pays,
    for :mod:`benchmarks.dispatch`.

The first three and the forwarder print one line ``READY <address>`` on stdout once they
serve; the parent side (:class:`WorkerProcess`) waits for it.  The toto
service is polled with calls until every process has answered.
"""

import argparse
import os
import pickle
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHOD_MODULE = 'benchmarks.echo_methods'
READY = 'READY'
START_TIMEOUT = 30.0


# -- the worker programs (child side) ----------------------------------------------------

def _ready(address):
    sys.stdout.write('%s %s\n' % (READY, address))
    sys.stdout.flush()


def serve_zmq(answer=True):
    """Raw pyzmq ROUTER echo worker (``answer=False``: a sink)."""
    import zmq
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    # Plenty of room for the sweep measure's burst of calls.
    router.setsockopt(zmq.RCVHWM, 0)
    port = router.bind_to_random_port('tcp://127.0.0.1')
    _ready('tcp://127.0.0.1:%d' % port)
    recv = router.recv_multipart
    send = router.send_multipart
    loads = pickle.loads
    dumps = pickle.dumps
    if not answer:
        while True:
            recv()
    while True:
        frames = recv()
        if len(frames) != 4:
            continue  # not a call from a DEALER: [identity, b'', id, payload]
        identity, _, message_id, payload = frames
        parameters = loads(payload)['parameters']
        send([identity, b'', message_id, dumps(parameters, 2)])


def serve_forwarder(socket_address):
    """The least a router written in Python does: move frames, both ways, no decisions.

    A ``ROUTER`` for clients and a ``DEALER`` for ``REP`` workers on
    ``socket_address``, as the queue device has, but moved by Python: the
    floor that any Python router (balanced dispatch's included) pays.
    """
    import zmq
    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    backend = context.socket(zmq.DEALER)
    for socket_ in (frontend, backend):
        socket_.setsockopt(zmq.LINGER, 0)
    frontend.setsockopt(zmq.SNDHWM, 0)
    backend.setsockopt(zmq.RCVHWM, 0)
    port = frontend.bind_to_random_port('tcp://127.0.0.1')
    backend.bind(socket_address)
    _ready('tcp://127.0.0.1:%d' % port)
    poller = zmq.Poller()
    poller.register(frontend, zmq.POLLIN)
    poller.register(backend, zmq.POLLIN)
    more, noblock = int(zmq.SNDMORE), int(zmq.NOBLOCK)
    while True:
        poller.poll()
        for source, destination in ((frontend, backend), (backend, frontend)):
            while True:
                try:
                    frames = source.recv_multipart(noblock)
                except zmq.Again:
                    break
                for frame in frames[:-1]:
                    destination.send(frame, more)
                destination.send(frames[-1])


def serve_http():
    """Tornado HTTP echo worker: toto's HTTP worker application."""
    import asyncio

    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from toto.httpworker import make_application

    async def main():
        sockets = bind_sockets(0, '127.0.0.1', family=socket.AF_INET)
        port = sockets[0].getsockname()[1]
        server = HTTPServer(make_application(METHOD_MODULE, '/'))
        server.add_sockets(sockets)
        _ready('http://127.0.0.1:%d/' % port)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_toto(processes, bind_address, socket_dir, dispatch=None, method_concurrency=None,
               socket_address=None):
    """toto's TotoWorkerService with ``processes`` worker processes."""
    from toto.worker import TotoWorkerService

    # run() parses the command line: leave it only the program name.
    del sys.argv[1:]
    extra = {}
    if dispatch:
        extra['dispatch'] = dispatch
    if method_concurrency:
        extra['method_concurrency'] = method_concurrency
    TotoWorkerService(method_module=METHOD_MODULE,
                      processes=processes,
                      worker_bind_address=bind_address,
                      worker_socket_address=(socket_address or
                                             'ipc://%s/workers.sock' % socket_dir),
                      control_socket_address='ipc://%s/control.sock' % socket_dir,
                      pidfile=os.path.join(socket_dir, 'toto.pid'), **extra).run()


def _exit_with_parent():
    """Ask Linux to SIGTERM this process when the benchmark that started it dies."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent side still stops its workers
    if os.getppid() == 1:
        sys.exit(1)  # the parent is already gone


def main(argv=None):
    _exit_with_parent()
    parser = argparse.ArgumentParser(prog='python -m benchmarks.workers',
                                     description='Run one benchmark echo worker.')
    parser.add_argument('kind', choices=['zmq', 'sink', 'http', 'toto', 'forwarder'])
    parser.add_argument('--processes', type=int, default=1)
    parser.add_argument('--bind', default='')
    parser.add_argument('--socket-dir', default='')
    parser.add_argument('--dispatch', default='')
    parser.add_argument('--method-concurrency', type=int, default=0)
    parser.add_argument('--socket-address', default='',
                        help='toto: where the worker processes connect; forwarder: where '
                             'its DEALER binds')
    args = parser.parse_args(argv)
    if args.kind == 'zmq':
        serve_zmq()
    elif args.kind == 'sink':
        serve_zmq(answer=False)
    elif args.kind == 'http':
        serve_http()
    elif args.kind == 'forwarder':
        serve_forwarder(args.socket_address)
    else:
        serve_toto(args.processes, args.bind, args.socket_dir, args.dispatch,
                   args.method_concurrency, args.socket_address)


# -- starting and stopping them (parent side) --------------------------------------------

def free_port():
    """A loopback TCP port that nothing listens on right now."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def child_environment():
    """The environment for child processes: this checkout first on the path."""
    env = dict(os.environ)
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = ROOT + (os.pathsep + path if path else '')
    return env


class WorkerProcess(object):
    """One worker program in a child process (and its own process group).

    Use as a context manager; :attr:`address` is where it serves.
    """

    def __init__(self, kind, processes=1, options=(), behind=None):
        self.kind = kind
        self.processes = processes
        # For the toto service: more of its options, e.g. ['--dispatch', 'queue'];
        # for the forwarder, its own.
        self.options = list(options)
        # A toto service with no router of its own, whose worker processes serve
        # behind the router at this address (a forwarder).
        self.behind = behind
        self.address = behind
        self.process = None
        self._dir = tempfile.mkdtemp(prefix='toto-bench-')
        self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        """Start the worker and wait until it serves; return self."""
        self.launch()
        return self.wait_ready()

    def launch(self):
        """Start the worker process without waiting for it."""
        command = [sys.executable, '-m', 'benchmarks.workers', self.kind]
        if self.kind == 'toto':
            if self.behind is None:
                self.address = 'tcp://127.0.0.1:%d' % free_port()
            command += ['--processes', str(self.processes),
                        '--bind', '' if self.behind else self.address,
                        '--socket-dir', self._dir] + self.options
        elif self.kind == 'forwarder':
            command += self.options
        self._log = open(os.path.join(self._dir, 'worker.log'), 'wb')
        self.process = subprocess.Popen(command, cwd=ROOT, env=child_environment(),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self._log, start_new_session=True)
        return self

    def wait_ready(self):
        """Wait until the launched worker serves; return self."""
        try:
            if self.kind == 'toto':
                self._wait_toto()
            else:
                self.address = self._read_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_ready(self):
        deadline = time.time() + START_TIMEOUT
        line = b''
        while not line.endswith(b'\n'):
            remaining = deadline - time.time()
            if remaining <= 0 or self.process.poll() is not None:
                raise RuntimeError('%s worker did not start: %s' % (self.kind, self.log_tail()))
            readable, _, _ = select.select([self.process.stdout], [], [], min(remaining, 0.2))
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        word, _, address = line.decode('ascii').strip().partition(' ')
        if word != READY:
            raise RuntimeError('unexpected line from the %s worker: %r' % (self.kind, line))
        return address

    def _wait_toto(self):
        """Call ``burn`` until every worker process of the service answered."""
        import zmq
        context = zmq.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.address)
        payload = pickle.dumps({'method': 'burn', 'parameters': {'iterations': 20000}}, 2)
        pids = set()
        deadline = time.time() + START_TIMEOUT
        try:
            while len(pids) < self.processes:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError('worker service did not start %d processes: %s'
                                       % (self.processes, self.log_tail()))
                # Several calls at once, so that a busy process leaves the
                # next ones to the others.
                for _ in range(2 * self.processes):
                    dealer.send_multipart([b'', str(uuid.uuid4()).encode('ascii'), payload])
                end = time.time() + 0.5
                while time.time() < end:
                    if not dealer.poll(50):
                        continue
                    frames = dealer.recv_multipart()
                    pids.add(pickle.loads(frames[-1])['pid'])
        finally:
            dealer.close(0)
            context.term()

    def log_tail(self, size=2000):
        try:
            with open(os.path.join(self._dir, 'worker.log'), 'rb') as log:
                return log.read()[-size:].decode('utf-8', 'replace')
        except (IOError, OSError):
            return ''

    def stop(self):
        process = self.process
        if process is not None:
            if process.returncode is None:
                # SIGTERM first: the toto service then stops its own processes.
                process.terminate()
                _wait_exited(process.pid, 10.0)
                # The leader is not reaped yet, so the group id is still ours:
                # end whatever is left of the process group it started.
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except OSError:
                    pass
            process.wait()
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._dir, ignore_errors=True)
        self.process = None


def _wait_exited(pid, timeout):
    """Wait until process ``pid`` (a child) exited, without reaping it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is not None:
            return
        time.sleep(0.02)


if __name__ == '__main__':
    main()
