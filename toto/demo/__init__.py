"""A self-contained tour: embedded workers, every call style, and a web server.

``python -m toto.demo`` starts a ZeroMQ worker (router plus two worker
threads) and an HTTP worker on free loopback ports, serving the bundled
:mod:`toto.demo.methods`, then calls them in each style the connections
support and prints each answer with its latency.  Then it starts a
TotoServer (:mod:`toto.demo.webserver`, in a process of its own) in front of
the same ZeroMQ worker and calls it as a web client does: plain, GET and
batch calls, an account, signed calls to an ``@authenticated`` method, a
method that hands its work to the worker, a logout.  It exits 0 when every
answer is the expected one::

    $ python -m toto.demo
    zmq   callback             greet          0.41 ms  {'greeting': 'Hello, callback!'}
    ...

:class:`EmbeddedWorkers` is also handy in tests and notebooks: it runs both
workers inside the current process until :meth:`EmbeddedWorkers.stop`.
"""

from __future__ import absolute_import, division, print_function

import logging
import socket
import sys
import threading
import time

import zmq
from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from toto.demo._webtour import WebServer, wait_until_serving, web_tour
from toto.httpworker import make_application
from toto.httpworkerconnection import HTTPWorkerConnection
from toto.worker import TotoWorker
from toto.zmqworkerconnection import ZMQWorkerConnection

METHOD_MODULE = 'toto.demo.methods'


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


class EmbeddedWorkers(object):
    """A ZeroMQ worker service and an HTTP worker running in this process.

    The ZeroMQ side is the same topology as
    :class:`~toto.worker.TotoWorkerService` -- a ROUTER/DEALER queue device
    in front of REP workers -- with threads instead of processes.  The HTTP
    worker is served on the IOLoop current when :meth:`start` runs.
    """

    def __init__(self, method_module=METHOD_MODULE, worker_threads=2):
        self.method_module = method_module
        self.worker_threads = worker_threads
        self.zmq_address = None
        self.http_address = None
        self._device = None
        self._workers = []
        self._threads = []
        self._http_server = None

    def start(self):
        """Start both workers; call it on the IOLoop that should serve HTTP."""
        from zmq.devices import ThreadDevice

        router_port, backend_port = free_port(), free_port()
        self.zmq_address = 'tcp://127.0.0.1:%d' % router_port
        backend_address = 'tcp://127.0.0.1:%d' % backend_port
        self._device = ThreadDevice(zmq.QUEUE, zmq.ROUTER, zmq.DEALER)
        self._device.bind_in(self.zmq_address)
        self._device.bind_out(backend_address)
        self._device.start()
        for _ in range(self.worker_threads):
            worker = TotoWorker(self.method_module, backend_address)
            thread = threading.Thread(target=worker.start, name='toto-demo-worker')
            thread.daemon = True
            thread.start()
            self._workers.append(worker)
            self._threads.append(thread)

        sockets = bind_sockets(0, '127.0.0.1')
        self.http_address = 'http://127.0.0.1:%d/' % sockets[0].getsockname()[1]
        self._http_server = HTTPServer(make_application(self.method_module))
        self._http_server.add_sockets(sockets)
        return self

    def stop(self):
        """Stop the workers (the device thread ends with the process)."""
        if self._http_server is not None:
            self._http_server.stop()
        for worker in self._workers:
            worker.stop()
        for thread in self._threads:
            thread.join(5)


# A native coroutine cannot be written in a file Python 2.7 must parse, so
# the Python 3 example is compiled only where it runs.
_NATIVE_AWAIT_SOURCE = '''
async def native_await(conn, method, parameters):
    return await conn.invoke(method, parameters, await_=True)
'''


def _native_await():
    if sys.version_info < (3, 5):
        return None
    namespace = {}
    exec(compile(_NATIVE_AWAIT_SOURCE, '<toto.demo>', 'exec'), namespace)
    return namespace['native_await']


@gen.coroutine
def _timed(label, make_call, expected, report):
    started = time.time()
    result = yield make_call()
    elapsed = (time.time() - started) * 1000.0
    report.append((label, elapsed, result, result == expected))


def _with_callback(start_call):
    """Run a callback-style call, wrapped in a Future only for timing."""
    from tornado.concurrent import Future
    done = Future()
    start_call(done.set_result)
    return done


def _call_styles(conn, native):
    """(style, method, start the call, expected answer) for each call style."""
    calls = [
        ('callback', 'greet',
         lambda: _with_callback(lambda cb: conn.invoke('greet', {'name': u'callback'},
                                                       callback=cb)),
         {'greeting': u'Hello, callback!'}),
        ('attribute', 'arith.add',
         lambda: _with_callback(lambda cb: conn.arith.add({'numbers': [1, 2, 3]},
                                                          callback=cb)),
         {'sum': 6}),
        ("**{'await': True}", 'greet',
         lambda: conn.invoke('greet', {'name': u'yield'}, **{'await': True}),
         {'greeting': u'Hello, yield!'}),
        ('await_=True', 'arith.add',
         lambda: conn.arith.add({'numbers': [40, 2]}, await_=True), {'sum': 42}),
        ('error answer', 'reject',
         lambda: conn.invoke('reject', {}, await_=True),
         {'error': {'code': 4242, 'value': 'rejected on purpose'}}),
        ('asynchronous ack', 'remember',
         lambda: conn.invoke('remember', {'note': 'hi'}, await_=True), None),
    ]
    if native is not None:
        calls.append(('native await', 'greet',
                      lambda: native(conn, 'greet', {'name': u'await'}),
                      {'greeting': u'Hello, await!'}))
    return calls


@gen.coroutine
def tour(workers, out=None):
    """Call the embedded workers in every style; return the report rows."""
    out = out or sys.stdout
    zmq_conn = ZMQWorkerConnection(workers.zmq_address, timeout=5.0)
    http_conn = HTTPWorkerConnection(workers.http_address, timeout=5.0)
    native = _native_await()
    report = []
    try:
        for transport, conn in (('zmq', zmq_conn), ('http', http_conn)):
            calls = _call_styles(conn, native)
            for style, method, make_call, expected in calls:
                yield _timed((transport, style, method), make_call, expected, report)
    finally:
        zmq_conn.close()
    for (transport, style, method), elapsed, result, ok in report:
        out.write('%-5s %-18s %-10s %7.2f ms  %s%r\n'
                  % (transport, style, method, elapsed, '' if ok else 'UNEXPECTED ', result))
    raise gen.Return(report)


def main():
    """Run the tour; return the process exit status."""
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    # The tour makes a method fail on purpose; its error log is no news.
    for noisy in ('toto.worker', 'toto.calls', 'tornado.access'):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    workers = EmbeddedWorkers()

    @gen.coroutine
    def run():
        workers.start()
        server = WebServer(workers.zmq_address, free_port())
        try:
            report = yield tour(workers)
            # The web half: a TotoServer in front of the same ZeroMQ worker.
            server.start()
            yield wait_until_serving(server)
            web_report = yield web_tour(server.url)
            for label, elapsed, shown, ok in web_report:
                sys.stdout.write('%-5s %-29s %7.2f ms  %s%r\n'
                                 % ('web', label, elapsed, '' if ok else 'UNEXPECTED ', shown))
            report.extend(web_report)
        finally:
            server.stop()
            workers.stop()
        raise gen.Return(report)

    report = IOLoop.current().run_sync(run, timeout=120)
    failures = [row for row in report if not row[3]]
    print('%d calls, %d as expected' % (len(report), len(report) - len(failures)))
    return 1 if failures else 0
