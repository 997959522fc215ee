"""Prometheus metrics of the ZeroMQ worker service (``--metrics_port``).

The service runs as several processes: the parent that supervises, the
router and the worker processes.  Each writes its own numbers with
``prometheus_client`` in multiprocess mode, into files in a private
directory that the parent makes before it starts any other process, and the
parent serves the sum of them at ``http://<metrics_address>:<metrics_port>/metrics``
from a thread of its own::

    service = start_service(9100, '127.0.0.1')   # the parent, in prepare()
    metrics = for_worker()                       # a worker process: None when off
    invoke = metrics.timed('accounts.lookup', module.invoke)
    service.close()                              # the parent, in finish()

Nothing here imports ``prometheus_client`` until metrics are turned on: it
reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported, so the
directory has to be in the environment by then.  With metrics off,
:func:`for_worker` and :func:`for_router` return None and the processes pay
one ``is None`` test per call.
"""

from __future__ import absolute_import, division, print_function

import atexit
import functools
import logging
import multiprocessing.util
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import six

from toto._security import is_loopback

logger = logging.getLogger('toto.worker')

#: The ``method`` label of calls that named no method of the service (an
#: unknown name, an undecodable call): names come from the network, and
#: each distinct label value is a new time series.
UNKNOWN_METHOD = '<unknown>'
#: The outcomes of a call (the ``outcome`` label).
OUTCOMES = ('ok', 'error', 'rejected')
#: Upper bounds of the call duration histogram's buckets, in seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: The states of the ``toto_worker_processes`` gauge.
PROCESS_STATES = ('busy', 'idle', 'silent')

_DIRECTORY_VARIABLE = 'PROMETHEUS_MULTIPROC_DIR'
# A scraper that connects and then sends nothing is dropped after this long:
# the endpoint answers one request at a time.
_REQUEST_TIMEOUT = 10.0
# How often the serving thread looks whether it has to stop.
_POLL_INTERVAL = 0.5
_clock = getattr(time, 'perf_counter', time.time)  # Python 2 has no perf_counter

# Set in the service's parent process before it starts the others, which
# inherit it: where this process tree writes its metrics, or None when off.
_directory = None
# The metrics objects of this process, made once per process: {(kind, pid): object}.
_made = {}


def check_options(port, address):
    """Raise ValueError, with the reason, when metrics cannot be served as asked.

    ``port`` None or 0 turns metrics off, and nothing is checked.  Never
    imports ``prometheus_client``: that has to wait until the service has
    made its directory (see the module's docstring).
    """
    if not port:
        return
    if (isinstance(port, bool) or not isinstance(port, six.integer_types) or
            not 0 < port < 65536):
        raise ValueError('metrics_port must be a TCP port from 1 to 65535 (or 0: off), '
                         'not %r' % (port,))
    if not address:
        raise ValueError('metrics_address must name the address to serve metrics on '
                         '(127.0.0.1 keeps them on this machine)')
    if not _importable('prometheus_client'):
        raise ValueError('metrics_port is set but prometheus_client is not installed: '
                         'pip install "toto-compat[metrics]"')
    values = sys.modules.get('prometheus_client.values')
    if values is not None and values.ValueClass is values.MutexValue:
        raise ValueError('metrics_port is set but prometheus_client was imported before '
                         'the service started, without %s: its metrics would stay in each '
                         'process. Import it later, or set %s first'
                         % (_DIRECTORY_VARIABLE, _DIRECTORY_VARIABLE))


def _importable(name):
    """True when ``import name`` would find the module, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        from importlib.util import find_spec
    except ImportError:  # Python 2
        import imp
        try:
            imp.find_module(name)
        except ImportError:
            return False
        return True
    return find_spec(name) is not None


def start_service(port, address):
    """Set up metrics in the service's parent process; None when ``port`` is off.

    Call it before any other process of the service starts.  Returns the
    :class:`ServiceMetrics` that serves them; close it when the service ends.
    """
    if not port:
        return None
    return ServiceMetrics(port, address)


def for_worker():
    """This worker process's :class:`WorkerMetrics`, or None when metrics are off."""
    return _once('worker', WorkerMetrics)


def for_router():
    """This router process's :class:`RouterMetrics`, or None when metrics are off."""
    return _once('router', RouterMetrics)


def _once(kind, make):
    # Two objects for one metric in one process would overwrite each
    # other's values in the process's file: one per process.
    if _directory is None:
        return None
    key = (kind, os.getpid())
    made = _made.get(key)
    if made is None:
        made = _made[key] = make()
    return made


class ServiceMetrics(object):
    """The parent's part: the directory, the restart counter and the endpoint.

    Makes a directory only this user can enter and names it in
    ``PROMETHEUS_MULTIPROC_DIR`` for the processes the service starts, then
    serves the metrics of every process from a thread.  :meth:`close` stops
    serving and removes the directory.
    """

    def __init__(self, port, address):
        global _directory
        address = address.strip('[]')  # an IPv6 address may come as in a URL
        self._previous = os.environ.get(_DIRECTORY_VARIABLE)
        # mkdtemp makes it 0700, under a name nobody can guess.
        self.directory = tempfile.mkdtemp(prefix='toto-metrics-')
        self._owner = os.getpid()
        self._server = self._thread = None
        # The safety net for a service that fails to start: finish() is not
        # called then.  Processes forked by multiprocessing do not run it.
        atexit.register(self.close)
        os.environ[_DIRECTORY_VARIABLE] = _directory = self.directory
        try:
            import prometheus_client
            from prometheus_client.multiprocess import MultiProcessCollector
            registry = prometheus_client.CollectorRegistry()
            MultiProcessCollector(registry, path=self.directory)
            self._restarts = prometheus_client.Counter(
                'toto_worker_restarts', 'Worker processes started again after they crashed '
                'or were killed', registry=None)
            self._server = _bind(address, port, _only_metrics(
                prometheus_client.make_wsgi_app(registry)))
        except Exception:
            self.close()
            raise
        # Processes forked from here on must not hold the listening socket.
        multiprocessing.util.register_after_fork(self, ServiceMetrics._forget_in_child)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        args=(_POLL_INTERVAL,), name='toto-metrics')
        self._thread.daemon = True
        self._thread.start()
        logger.info('serving metrics on http://%s/metrics (files in %s)',
                    _host_port(address, self._server.server_port), self.directory)
        if not is_loopback(address):
            logger.warning('the metrics endpoint on %s answers anyone who can reach it, '
                           'without authentication: it shows the service\'s method names '
                           'and load', address)

    def process_ended(self, pid):
        """Drop the live gauges of process ``pid``, which has ended."""
        from prometheus_client.multiprocess import mark_process_dead
        mark_process_dead(pid, self.directory)

    def process_restarted(self):
        """Count a worker process that is being started again."""
        self._restarts.inc()

    def close(self):
        """Stop serving and remove the directory (in the process that made it)."""
        global _directory
        if os.getpid() != self._owner or self.directory is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        if self._server is not None:
            self._server.server_close()
            self._server = None
        # This process's own files, before they go with the directory (only
        # recent prometheus_client releases can close them).
        close_files = getattr(sys.modules.get('prometheus_client.values'),
                              'close_all_multiprocess_files', None)
        if close_files is not None:
            close_files()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = _directory = None
        if self._previous is None:
            os.environ.pop(_DIRECTORY_VARIABLE, None)
        else:
            os.environ[_DIRECTORY_VARIABLE] = self._previous

    def _forget_in_child(self):
        # A forked process has its own copy of the listening socket, and
        # nothing to serve: close that copy (the parent's stays open).
        if self._server is not None:
            self._server.socket.close()
        self._server = self._thread = None
        self._owner = None


class WorkerMetrics(object):
    """A worker process's part: calls by method and outcome, and their durations."""

    def __init__(self):
        from prometheus_client import Counter, Histogram

        from toto._methods import is_awaitable
        self._is_awaitable = is_awaitable
        self._calls = Counter('toto_worker_calls', 'Calls taken by the worker processes',
                              ['method', 'outcome'], registry=None)
        self._durations = Histogram('toto_worker_call_duration_seconds',
                                    'How long methods took, to their end',
                                    ['method'], buckets=DURATION_BUCKETS, registry=None)
        # {(method, outcome): (its calls counter, its method's histogram)}
        self._series = {}
        self._rejected = None

    def timed(self, name, invoke):
        """Wrap a method's ``invoke`` so that its call is counted and timed.

        ``name`` is the method's name, already resolved.  The call counts
        when the method ends: when ``invoke`` returns or raises, or, for a
        method returning a Future or a coroutine, when that resolves.  The
        time runs from now, so an asynchronous method's time includes its
        acknowledgement.
        """
        started = _clock()

        def run(worker, parameters):
            try:
                result = invoke(worker, parameters)
            except Exception:
                self._done(name, 'error', started)
                raise
            if self._is_awaitable(result):
                from tornado import gen
                from tornado.concurrent import future_add_done_callback
                result = gen.convert_yielded(result)
                future_add_done_callback(result, functools.partial(
                    self._resolved, name, started))
                return result
            self._done(name, 'ok', started)
            return result

        if getattr(invoke, 'asynchronous', False):
            run.asynchronous = True
        return run

    def rejected(self):
        """Count a call that named no method of the service (it is not timed)."""
        if self._rejected is None:
            self._rejected = self._calls.labels(UNKNOWN_METHOD, 'rejected')
        self._rejected.inc()

    def _resolved(self, name, started, future):
        try:
            future.result()
        except BaseException:  # a cancelled Future raises no Exception
            self._done(name, 'error', started)
        else:
            self._done(name, 'ok', started)

    def _done(self, name, outcome, started):
        series = self._series.get((name, outcome))
        if series is None:
            series = self._series[(name, outcome)] = (self._calls.labels(name, outcome),
                                                      self._durations.labels(name))
        series[0].inc()
        # time.time() (Python 2) may step back.
        series[1].observe(max(_clock() - started, 0.0))


class RouterMetrics(object):
    """The router's part: calls it holds and what its worker processes are doing."""

    def __init__(self):
        from prometheus_client import Gauge
        # livesum: the router's value while it runs, gone when it has ended.
        self._held = Gauge('toto_worker_calls_queued', 'Calls the router holds until a '
                           'worker process has room for them', multiprocess_mode='livesum',
                           registry=None)
        processes = Gauge('toto_worker_processes', 'Worker processes the router knows, by '
                          'state', ['state'], multiprocess_mode='livesum', registry=None)
        self._states = [processes.labels(state) for state in PROCESS_STATES]
        for gauge in self._states:
            gauge.set(0)

    def update(self, balancer):
        """Read the queue and the workers of a :class:`toto._dispatch.LoadBalancer`."""
        busy = idle = silent = 0
        for worker in balancer.workers.values():
            if not worker.live:
                silent += 1
            elif worker.sent != worker.finished:
                busy += 1
            else:
                idle += 1
        self._held.set(len(balancer.held))
        for gauge, value in zip(self._states, (busy, idle, silent)):
            gauge.set(value)


# -- the endpoint --------------------------------------------------------------------

class _Handler(WSGIRequestHandler):
    """One scrape; logs to ``toto.worker`` at debug level instead of stderr."""

    timeout = _REQUEST_TIMEOUT

    def log_message(self, format, *args):
        logger.debug('metrics endpoint: %s %s', self.client_address[0], format % args)


class _Server(WSGIServer):
    """A WSGI server that logs failed requests instead of printing them."""

    def handle_error(self, request, client_address):
        logger.warning('metrics endpoint: a request from %s failed: %s', client_address[0],
                       sys.exc_info()[1])


class _Server6(_Server):
    address_family = socket.AF_INET6


def _bind(address, port, app):
    server_class = _Server6 if ':' in address else _Server
    try:
        server = server_class((address, port), _Handler)
    except (OSError, socket.error) as error:
        raise RuntimeError('cannot serve metrics on %s: %s'
                           % (_host_port(address, port), error))
    server.set_app(app)
    return server


def _host_port(address, port):
    return '[%s]:%d' % (address, port) if ':' in address else '%s:%d' % (address, port)


def _only_metrics(app):
    """``app`` at ``/metrics`` (and ``/``), 404 elsewhere."""
    def serve(environ, start_response):
        if environ.get('PATH_INFO', '/') in ('/', '/metrics'):
            return app(environ, start_response)
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'not found: metrics are at /metrics\n']
    return serve
