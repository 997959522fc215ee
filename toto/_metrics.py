"""Prometheus metrics of the ZeroMQ worker service (``--metrics_port``).

The service runs as several processes: the parent that supervises, the
router and the worker processes.  Each writes its own numbers with
``prometheus_client`` in multiprocess mode, into files in a private
directory that the parent makes before it starts any other process, and the
parent serves the sum of them at ``http://<metrics_address>:<metrics_port>/metrics``
from a thread of its own::

    service = start_service(9100, '127.0.0.1')   # the parent, in prepare()
    metrics = for_worker()                       # a worker process: None when off
    method = find_method(methods, name)          # name: as the call spelled it
    invoke = metrics.timed(method_label(methods, method), method.invoke)
    service.close()                              # the parent, in finish()

Nothing here imports ``prometheus_client`` until metrics are turned on: it
reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported, so the
directory has to be in the environment by then.  With metrics off,
:func:`for_worker` and :func:`for_router` return None and the processes pay
one ``is None`` test per call.
"""

from __future__ import absolute_import, division, print_function

import atexit
import collections
import contextlib
import functools
import io
import logging
import multiprocessing.util
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import types
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
# A scraper has this long from its connection to the end of its request, however
# it trickles the bytes in, and this long for the whole exchange: each
# connection has a thread of its own until then.
_REQUEST_TIMEOUT = 10.0
_EXCHANGE_TIMEOUT = 60.0
# Connections served at once.  A new one past this closes the connection that
# has been sending its request the longest (a scraper sends it at once), or,
# when all of them are being answered, is closed itself.
_MAX_CONNECTIONS = 16
# The endpoint's warnings (failed, refused and dropped connections) come at
# most this often, in seconds, with a count.
_WARNING_INTERVAL = 10.0
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


def method_label(method_package, method):
    """The ``method`` label of the calls that ran ``method``, whatever they spelled.

    ``method`` is what :func:`toto._methods.find_method` resolved a call's
    name to under ``method_package``.  A name may reach one method by many
    spellings (``a.helpers.b`` when module ``a`` imports ``helpers``, which
    imports ``b``), and each label value is a time series kept for good, so
    the label is the method's own name: a module's name below the method
    package (``b``), a class's module and qualified name (``a.Lookup``),
    and for any other object with an ``invoke``, its class's.  There are
    then at most as many label values as the package has methods.
    """
    if isinstance(method, types.ModuleType):
        return _below(method.__name__, method_package.__name__)
    if not isinstance(method, six.class_types):
        method = type(method)
    home = getattr(method, '__module__', None)
    name = getattr(method, '__qualname__', method.__name__)  # Python 2 has no __qualname__
    if not isinstance(home, six.string_types):
        return name
    return _below(home, method_package.__name__) + '.' + name


def _below(name, package):
    """``name`` without the ``package.`` it starts with (the package itself: its name)."""
    if name.startswith(package + '.'):
        return name[len(package) + 1:]
    return name


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
    serves the metrics of every process from a thread, each connection in a
    thread of its own (at most ``_MAX_CONNECTIONS``).  :meth:`close` stops
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
            self._server.close_connections()
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
            self._server.forget_after_fork()
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

        ``name`` is the method's own name (see :func:`method_label`), not the
        one the call spelled: each name is a time series.  The call counts
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

class _Throttled(object):
    """A warning logged at most once per ``interval`` seconds, with how many it stands for.

    Peers can make the endpoint's warnings happen as fast as they connect.
    ``what`` is a format for that count and an ``s`` for plurals, such as
    ``'%d request%s failed'``.
    """

    def __init__(self, what, interval=_WARNING_INTERVAL):
        self.what = what
        self.interval = interval
        self._lock = threading.Lock()  # connections are served from many threads
        self._last = None
        self._since = 0

    def warn(self, detail):
        """Count one more; log if the interval has passed (``detail``: the latest one)."""
        with self._lock:
            self._since += 1
            now = time.time()
            if self._last is not None and 0 <= now - self._last < self.interval:
                return
            count, self._since, self._last = self._since, 0, now
        logger.warning('metrics endpoint: %s in %.0f s; latest %s',
                       self.what % (count, '' if count == 1 else 's'), self.interval, detail)


class _DeadlineReader(io.RawIOBase):
    """Reads a connection, and fails with ``socket.timeout`` once its deadline has passed.

    A socket timeout alone bounds each read, and a client that sends a byte
    just before it expires would keep its connection (and thread) forever.
    """

    def __init__(self, connection, deadline):
        io.RawIOBase.__init__(self)
        self._connection = connection
        self._deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        with _resetting_on_timeout(self._connection):
            self._connection.settimeout(_remaining(self._deadline))
            return self._connection.recv_into(buffer)


class _DeadlineWriter(object):
    """Writes to a connection, failing with ``socket.timeout`` past its deadline.

    Bounds the time a client that reads the answer slowly holds its thread.
    """

    closed = False

    def __init__(self, connection, deadline):
        self._connection = connection
        self._deadline = deadline

    def write(self, data):
        view = memoryview(data)
        with _resetting_on_timeout(self._connection):
            while len(view):
                self._connection.settimeout(_remaining(self._deadline))
                view = view[self._connection.send(view):]
        return len(data)

    def flush(self):
        pass

    def close(self):
        pass


def _remaining(deadline):
    remaining = deadline - _clock()
    if remaining <= 0:
        raise socket.timeout('the connection outlasted its time')
    return remaining


@contextlib.contextmanager
def _resetting_on_timeout(connection):
    """Make a connection that runs out of time end with a reset when it is closed.

    Closed normally, the kernel would go on trickling what the answer left
    in the socket's buffers to a client that reads slowly, for minutes.
    """
    try:
        yield
    except socket.timeout:
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NONE)
        except (OSError, socket.error):
            pass  # already gone
        raise


# SO_LINGER on, for 0 seconds: close() discards what is unsent and resets.
_LINGER_NONE = struct.pack('ii', 1, 0)


class _Handler(WSGIRequestHandler):
    """One scrape, in a thread of its own, within fixed times.

    The request must arrive within ``_REQUEST_TIMEOUT`` seconds of the
    connection and the whole exchange take at most ``_EXCHANGE_TIMEOUT``.
    Logs to ``toto.worker`` at debug level instead of stderr.
    """

    def setup(self):
        WSGIRequestHandler.setup(self)
        # Replace the plain socket files of the base class.
        self.rfile.close()
        self.wfile.close()
        opened = _clock()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection,
                                                       opened + _REQUEST_TIMEOUT))
        self.wfile = _DeadlineWriter(self.connection, opened + _EXCHANGE_TIMEOUT)

    def parse_request(self):
        parsed = WSGIRequestHandler.parse_request(self)
        # From here on it is being answered: a new connection may not close it.
        self.server.request_read(self.connection)
        return parsed

    def get_stderr(self):
        # Where wsgiref writes the traceback of an answer that failed.
        return _ErrorStream(self.server, self.connection, self.client_address[0])

    def log_message(self, format, *args):
        logger.debug('metrics endpoint: %s %s', self.client_address[0], format % args)


class _ErrorStream(object):
    """Takes the traceback wsgiref writes for a failed answer; logs its last line, throttled.

    A client that stops reading makes its answer fail, as often as it likes.
    """

    def __init__(self, server, connection, client):
        self._server = server
        self._connection = connection
        self._client = client
        self._parts = []

    def write(self, text):
        self._parts.append(text)

    def flush(self):
        lines = ''.join(self._parts).strip().splitlines()
        self._parts = []
        if lines:
            self._server.answer_failed(self._connection, 'to %s: %s' % (self._client, lines[-1]))


# What a connection past the cap gets when every other one is being answered.
_BUSY_ANSWER = (b'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n'
                b'Connection: close\r\n\r\ntoo many scrapes at once\n')


class _Server(WSGIServer):
    """A WSGI server that answers each connection in a thread of its own.

    At most ``_MAX_CONNECTIONS`` connections are served at once: a slow
    client cannot hold the endpoint (or its scrapers) for longer than its
    deadline, and many of them only close each other's connections.
    Failures are logged, at most once per interval, instead of printed.
    """

    def __init__(self, *args, **kwargs):
        self._connections_lock = threading.Lock()
        # The connections being served; those still sending their request, oldest first.
        self._open = set()
        self._reading = collections.OrderedDict()
        # Connections this server hung up on: their failures are not news.
        self._hung_up = set()
        self._failed_requests = _Throttled('%d request%s failed')
        self._failed_answers = _Throttled('%d answer%s failed')
        self._refusals = _Throttled('refused %d connection%s with 503')
        self._drops = _Throttled('closed %d slow connection%s to make room')
        WSGIServer.__init__(self, *args, **kwargs)

    def process_request(self, request, client_address):
        admitted, dropped = self._admit(request)
        if dropped:
            self._drops.warn('for one from %s: %d connections were open; closed the one '
                             'sending its request the longest'
                             % (client_address[0], _MAX_CONNECTIONS))
        if not admitted:
            self._refusals.warn('from %s: all %d connections are being answered'
                                % (client_address[0], _MAX_CONNECTIONS))
            _say_busy(request)
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve_connection, name='toto-metrics-scrape',
                                  args=(request, client_address))
        thread.daemon = True  # never holds up the end of the process
        try:
            thread.start()
        except Exception:  # RuntimeError: no more threads
            self._forget(request)
            self.shutdown_request(request)
            raise

    def _serve_connection(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self._forget(request)
            self.shutdown_request(request)

    def _admit(self, request):
        """(whether to serve ``request``, whether a slow connection was closed for it)."""
        with self._connections_lock:
            dropped = False
            if len(self._open) >= _MAX_CONNECTIONS:
                if not self._reading:
                    return False, False
                slowest = next(iter(self._reading))
                del self._reading[slowest]
                self._open.discard(slowest)
                self._hung_up.add(slowest)
                _hang_up(slowest)  # its thread sees its request end, and ends
                dropped = True
            self._open.add(request)
            self._reading[request] = None
            return True, dropped

    def request_read(self, request):
        """Called by the handler once ``request`` has sent its request."""
        with self._connections_lock:
            self._reading.pop(request, None)

    def _forget(self, request):
        with self._connections_lock:
            self._open.discard(request)
            self._reading.pop(request, None)
            self._hung_up.discard(request)

    def close_connections(self):
        """Hang up every connection being served."""
        with self._connections_lock:
            connections = list(self._open)
            self._open.clear()
            self._reading.clear()
            self._hung_up.update(connections)
        for connection in connections:
            _hang_up(connection)

    def forget_after_fork(self):
        """In a forked process: close its copies of the connections, and the listening socket.

        The threads serving them stayed in the parent, which may have held the
        lock when it forked: it is not taken here.
        """
        self._connections_lock = threading.Lock()
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._reading.clear()
        self._hung_up.clear()
        self.socket.close()

    def handle_error(self, request, client_address):
        if request not in self._hung_up:
            self._failed_requests.warn('from %s: %s' % (client_address[0], sys.exc_info()[1]))

    def answer_failed(self, request, detail):
        """Log (throttled) that the answer to ``request`` failed, as ``detail`` says."""
        if request not in self._hung_up:
            self._failed_answers.warn(detail)


def _hang_up(connection):
    # shutdown() ends the exchange for every copy of the socket, and wakes the
    # thread blocked reading it; its thread closes it.
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except (OSError, socket.error):
        pass  # already gone


def _say_busy(connection):
    try:
        connection.setblocking(False)
        connection.send(_BUSY_ANSWER)
    except (OSError, socket.error):
        pass  # it hung up first, or has no room: it is closed all the same


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
