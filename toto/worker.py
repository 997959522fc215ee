"""The ZeroMQ worker side: a router and the processes that run methods.

:class:`TotoWorkerService` binds a ``ROUTER`` socket on
``--worker_bind_address`` that clients connect to, forwards calls through a
queue device to a ``DEALER`` on ``--worker_socket_address``, and runs
``--processes`` :class:`TotoWorker` processes, each a ``REP`` socket taking
one call at a time.  A call ``'a.b'`` runs ``invoke(worker, parameters)``
from the module ``<method_module>.a.b``::

    # methods/accounts/lookup.py
    from toto.invocation import *

    def invoke(worker, parameters):
        if 'id' not in parameters:
            raise TotoException(ERROR_MISSING_PARAMS, 'id is required')
        return {'id': parameters['id'], 'name': 'Ada'}

    # worker.py
    from toto.worker import TotoWorkerService

    if __name__ == '__main__':
        TotoWorkerService(method_module='methods', processes=4).run()

``--processes=0`` runs only the router (bind ``--worker_socket_address`` on
tcp for remote workers) and ``--worker_bind_address=`` runs only worker
processes that connect to a router elsewhere.  ``--command=status`` or
``--command=shutdown`` sends a control command to the running service on
``--control_socket_address``, which passes it on to its worker processes.

The default ``--worker_socket_address`` and ``--control_socket_address`` are
``ipc://`` files in a folder only the service's user can enter (see
:func:`toto._security.default_socket_directory`).
"""

from __future__ import absolute_import, division, print_function

import functools
import importlib
import inspect
import logging
import multiprocessing
import os
import json
import re
import sys
import time
import types

import six
import zmq
from tornado import gen
from tornado.concurrent import is_future
from tornado.ioloop import IOLoop
from tornado.options import options

from toto import _dispatch, _metrics
from toto._codec import MessageCodec
from toto._security import (bind_private, check_socket_path, claim_of,
                            default_socket_directory, load_curve_key,
                            remove_if_unchanged, shortened, warn_once_if_exposed,
                            zmq_bind_host)
from toto.exceptions import ERROR_SERVER, TotoException
from toto.options import safe_define
from toto.service import TotoService, _exit_reason, pid_path, process_count

try:
    from inspect import isawaitable as _isawaitable
except ImportError:  # Python 2 has no native coroutines
    _isawaitable = None

logger = logging.getLogger('toto.worker')

_OPTION_GROUP = 'worker service'

safe_define('method_module', default='methods', type=str, group=_OPTION_GROUP,
            metavar='MODULE',
            help='Package (or module) that holds the worker methods: a call to '
                 '"a.b" runs <method_module>.a.b.invoke(worker, parameters)')
safe_define('worker_bind_address', default='tcp://*:55555', type=str, group=_OPTION_GROUP,
            metavar='ADDRESS',
            help='Address the router binds for clients; empty: run worker processes '
                 'only, connected to --worker_socket_address')
safe_define('worker_socket_address',
            default='ipc://' + os.path.join(default_socket_directory(), 'workerservice.sock'),
            type=str, group=_OPTION_GROUP, metavar='ADDRESS',
            help='Address between the router and the worker processes (tcp to '
                 'spread workers over machines); the default is private to this user')
safe_define('control_socket_address',
            default='ipc://' + os.path.join(default_socket_directory(), 'workercontrol.sock'),
            type=str, group=_OPTION_GROUP, metavar='ADDRESS',
            help='Address the service takes control commands (--command) on; the '
                 'default is private to this user')
safe_define('command', type=str, metavar='status|shutdown', group=_OPTION_GROUP,
            help='Send this command to running worker processes and exit')
safe_define('startup_function', type=str, group=_OPTION_GROUP, metavar='MODULE.FUNCTION',
            help='module.function called in each worker process before it takes '
                 'calls, with the keyword arguments worker and db_connection')
safe_define('saturation_warning_after', default=5.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='Log a warning (at most once a minute per worker process) when calls '
                 'have queued for a worker process this long without a break; '
                 '0: never')
safe_define('dispatch', default='balanced', type=str, group=_OPTION_GROUP,
            metavar='balanced|queue',
            help='How the router hands calls to worker processes: balanced (only to '
                 'a process with room for it) or queue (in turn, the original '
                 'protocol; needed when the router or workers are the original '
                 'package\'s). Router and workers must agree')
safe_define('method_concurrency', default=100, type=int, group=_OPTION_GROUP,
            metavar='N',
            help='Coroutine methods a worker process runs at once (balanced '
                 'dispatch); plain methods always run one at a time')
safe_define('max_message_size', default=64 * 1024 * 1024, type=int, group=_OPTION_GROUP,
            metavar='BYTES',
            help='Largest call in bytes a worker accepts; a client sending more is '
                 'disconnected (zmq) or refused (http). -1: no limit')
safe_define('curve_secret_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='zmq: the service\'s CURVE secret key (Z85 text or .key_secret file); '
                 'clients then need its public key, and traffic is encrypted')
safe_define('curve_authorized_keys', type=str, group=_OPTION_GROUP, metavar='DIRECTORY',
            help='zmq: directory of client public certificates allowed in '
                 '(default with a secret key: any client that knows the server key)')
safe_define('compression_module', type=str, group=_OPTION_GROUP, metavar='MODULE',
            help='Module with compress()/decompress() for messages, e.g. zlib; '
                 'must match the clients')
safe_define('serialization_module', type=str, group=_OPTION_GROUP, metavar='MODULE',
            help='Module with dumps()/loads() for messages, e.g. json (default: '
                 'pickle protocol 2); must match the clients')
safe_define('metrics_port', type=int, group=_OPTION_GROUP, metavar='PORT',
            help='Serve Prometheus metrics of the service at http://ADDRESS:PORT/metrics '
                 '(needs prometheus_client: pip install toto-compat[metrics]); '
                 'unset or 0: off')
safe_define('metrics_address', default='127.0.0.1', type=str, group=_OPTION_GROUP,
            metavar='ADDRESS',
            help='Address the metrics endpoint (--metrics_port) listens on; the '
                 'default keeps it on this machine')

CONTROL_PREFIX = _dispatch.CONTROL_PREFIX
# The first message of a worker process on the control channel: its pid.
_CONTROL_HELLO = b'worker'
# How long a command waits for worker processes that have not said hello.
_HELLO_WAIT = 1.0
# How long --command waits for the service's answer.
_CONTROL_ANSWER_WAIT = 3.0
# How long the service waits for its processes' answers to a status command.
_STATUS_WAIT = 1.5
# How long a worker process that left gracefully waits for its last answers
# to leave.
_LEAVING_LINGER = 5.0
# How often the main process looks at the processes while it stops.
_STOPPING_INTERVAL = 0.02
# How long a reload waits for a new worker process to say hello.
_RELOAD_START_WAIT = 10.0
#: ``balanced``: the router sends a call only to a worker with room for it;
#: ``queue``: the original protocol (a queue device and ``REP`` workers).
DISPATCH_MODES = ('balanced', 'queue')
CONTROL_COMMANDS = ('status', 'shutdown', 'reload')
# The window travels in 16 bits of the worker's state frame.
_MAX_METHOD_CONCURRENCY = 0xFFFF


def _check_dispatch(dispatch):
    if dispatch not in DISPATCH_MODES:
        raise ValueError('dispatch must be one of %s, not %r'
                         % (', '.join(DISPATCH_MODES), dispatch))


def _check_method_concurrency(method_concurrency):
    if (not isinstance(method_concurrency, six.integer_types) or
            not 1 <= method_concurrency <= _MAX_METHOD_CONCURRENCY):
        raise ValueError('method_concurrency must be a whole number from 1 to %d, not %r'
                         % (_MAX_METHOD_CONCURRENCY, method_concurrency))


def _check_curve(secret_key, authorized_keys):
    """Refuse a CURVE set-up that would serve in plaintext or cannot start.

    Returns the secret key as Z85 bytes, or None without CURVE.
    """
    if authorized_keys and not secret_key:
        raise ValueError('curve_authorized_keys is set but curve_secret_key is not: '
                         'without a secret key the service would answer anyone in '
                         'plaintext. Set curve_secret_key too, or drop '
                         'curve_authorized_keys')
    if not secret_key:
        return None
    if not zmq.has('curve'):
        raise ValueError('curve_secret_key is set but this libzmq has no CURVE support')
    if authorized_keys and not os.path.isdir(authorized_keys):
        raise ValueError('curve_authorized_keys must be a directory of public '
                         'certificates, not %r' % (authorized_keys,))
    return load_curve_key(secret_key, secret=True)


def _check_service_options():
    """Raise ValueError, with the reason, for options the service cannot run with.

    Checked in the parent before any process starts, so a mistake stops the
    start with one message instead of failing in every worker process.
    """
    _check_dispatch(options.dispatch)
    _check_method_concurrency(options.method_concurrency)
    if options.worker_bind_address:
        _check_curve(options.curve_secret_key, options.curve_authorized_keys)
    # The service binds its worker socket (with a router) and its control
    # socket: refuse paths another local user could stand behind.
    check_socket_path(options.worker_socket_address, binding=bool(options.worker_bind_address))
    if process_count() and options.control_socket_address:
        check_socket_path(options.control_socket_address, binding=True)
    _metrics.check_options(options.metrics_port, options.metrics_address)


# How long a drained router waits for its last answers to leave.
_DRAINED_LINGER = 5.0
# How long the service waits for its router process to bind.
_ROUTER_START_WAIT = 10.0
# Plain ints: pyzmq's enum flags make every use cost more on the busy path.
_SNDMORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def _is_awaitable(value):
    """True for Futures and, on Python 3, coroutines and other awaitables.

    A method whose ``invoke`` returns one of these (a ``@gen.coroutine``, an
    ``async def``, or a function returning a Future) is awaited, and its
    answer is what the awaitable resolves to.
    """
    return is_future(value) or (_isawaitable is not None and _isawaitable(value))


def _run_detached(run, io_loop, report, on_done=None):
    """Run an asynchronous method after its acknowledgement.

    Nobody waits for its answer, so ``report`` (which logs) gets what
    ``run()`` raises, or what the coroutine it returns fails with.  True when
    it goes on as a coroutine; ``on_done`` is then called once that ends.
    """
    try:
        result = run()
        if _is_awaitable(result):
            io_loop.add_future(gen.convert_yielded(result),
                               functools.partial(_report_failure, report, on_done))
            return True
    except Exception as error:
        report(error)
    return False


def _report_failure(report, on_done, future):
    try:
        future.result()
    except BaseException as error:  # a cancelled Future raises no Exception
        report(error)
    if on_done is not None:
        on_done()


def find_method(method_module, name):
    """Return the method module for the call ``name`` under ``method_module``.

    ``'a.b'`` is ``method_module.a.b``; submodules are imported on first use,
    so a package need not import them itself.  A name that does not resolve
    raises ``AttributeError``, as the original worker did.  Unlike the
    original, a name resolves only to modules inside ``method_module``'s
    package: not through a module it imports (``methods.json.decoder``) nor
    to any other object, and names with private parts (``_x``), parts that
    are not identifiers, or more than 512 characters never resolve.
    """
    if not isinstance(name, six.string_types) or not name:
        raise AttributeError('method name must be a non-empty string, not %s'
                             % shortened(repr(name)))
    if len(name) > _MAX_METHOD_NAME or not all(_is_method_part(part)
                                               for part in name.split('.')):
        raise AttributeError('%s is not a method name' % shortened(repr(name)))
    package = method_module.__name__
    target = method_module
    for part in name.split('.'):
        try:
            target = getattr(target, part)
        except AttributeError as lookup_error:
            target = _import_submodule(target, part, lookup_error)
        inside = getattr(target, '__name__', None)
        if (not isinstance(target, types.ModuleType) or
                (inside != package and not inside.startswith(package + '.'))):
            raise AttributeError('%r is not a method of %s' % (name, package))
    return target


# Longer names are refused before any lookup (and cut in messages and logs).
_MAX_METHOD_NAME = 512
_IDENTIFIER = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


def _is_method_part(part):
    # ASCII identifiers only: what every Python can import, and nothing a
    # path or the import system reads specially ('/', NUL, '..').
    return _IDENTIFIER.match(part) is not None


def _import_submodule(package, part, lookup_error):
    full_name = '%s.%s' % (package.__name__, part)
    try:
        return importlib.import_module(full_name)
    except ImportError as import_error:
        missing = getattr(import_error, 'name', None)
        message = str(import_error)
        if missing in (full_name, None) and (missing or message.endswith(part)
                                             or full_name in message):
            raise lookup_error
        raise


def error_info(error, debug=False):
    """Return the ``{'code': ..., 'value': ...}`` answer for ``error`` and log it.

    A :class:`~toto.exceptions.TotoException` keeps its code; anything else
    becomes ``ERROR_SERVER`` with ``str(error)``.  Call it from the ``except``
    block so ``debug`` can log the traceback.
    """
    if not isinstance(error, TotoException):
        error = TotoException(ERROR_SERVER, _text(error))
    logger.error('%s', error, exc_info=bool(debug))
    return dict(error.__dict__)


def _text(error):
    try:
        return str(error)
    except UnicodeError:  # Python 2: a unicode message that is not ASCII
        return six.text_type(error)


def call_startup_function(path, worker):
    """Import and call ``module.function`` with the worker.

    The original passed ``worker`` and ``db_connection``; functions that take
    only some of those keywords get only those.
    """
    module_name, _, function_name = path.rpartition('.')
    function = getattr(importlib.import_module(module_name), function_name)
    available = {'worker': worker, 'db_connection': getattr(worker, 'db_connection', None)}
    try:
        spec = inspect.getfullargspec(function)
        accepts_all = spec.varkw is not None
    except AttributeError:  # Python 2
        spec = inspect.getargspec(function)
        accepts_all = spec.keywords is not None
    if accepts_all:
        return function(**available)
    return function(**dict((k, v) for k, v in available.items() if k in spec.args))


class TotoWorker(object):
    """One worker process: it runs the calls the router sends it.

    ``method_module`` is a module object or name.  Calls are
    ``[message_id, payload]``; the answer is ``[message_id, payload]``, or
    ``[message_id]`` alone for an :func:`~toto.invocation.asynchronous`
    method, sent before the method runs.  Nothing a method raises and nothing
    a client sends stops the worker: failures become error answers.

    ``dispatch`` is the protocol spoken with the router (see
    :func:`run_router`).  ``'queue'`` (the default here, as in the original
    package) is a ``REP`` socket: a method that returns a Future or a
    coroutine is awaited before the next call is taken.  ``'balanced'`` is a
    ``DEALER`` that tells the router how much it can take: up to
    ``method_concurrency`` coroutine methods run side by side, and plain
    methods one at a time.  :class:`TotoWorkerService` uses ``--dispatch``,
    whose default is ``'balanced'``.
    """

    def __init__(self, method_module, socket_address, control_socket_address=None,
                 compression=None, serialization=None, debug=False, max_message_size=None,
                 saturation_warning_after=5.0, dispatch='queue', method_concurrency=100):
        _check_dispatch(dispatch)
        _check_method_concurrency(method_concurrency)
        self.dispatch = dispatch
        self.method_concurrency = method_concurrency
        if isinstance(method_module, six.string_types):
            method_module = importlib.import_module(method_module)
        self.method_module = method_module
        self.socket_address = socket_address
        self.control_socket_address = control_socket_address
        self.debug = debug
        self.max_message_size = max_message_size
        self.db_connection = None
        self.calls_answered = 0
        #: Error answers given (and asynchronous methods' work that failed).
        self.errors = 0
        #: The name of the last call that found its method.
        self.last_method = None
        self.started = time.time()
        self._saturation = _dispatch.SaturationLog(
            saturation_warning_after, 'worker pid %d' % os.getpid())
        self._codec = MessageCodec(compression, serialization, max_size=max_message_size)
        self._context = None
        self._socket = None
        self._control = None
        self._io_loop = None
        # The message id of a call whose coroutine method is still running:
        # its answer must go out before the REP socket takes another call.
        self._in_hand = None
        # Balanced dispatch: calls finished so far, coroutines running, and
        # how many unfinished calls the router may send at once.
        self._finished = 0
        self._running = 0
        self._window = min(max(method_concurrency, _dispatch.WORKER_WINDOW), 0xFFFF)
        self._check_scheduled = False
        self._heartbeat = None
        # Leaving (a shutdown or reload command): no new calls are taken,
        # and the process ends once the router has said no more will come
        # (balanced) and every call in hand is answered.
        self._leaving = False
        self._released = False
        self._left_gracefully = False
        # Set when the service serves metrics (--metrics_port), else None.
        self._metrics = _metrics.for_worker()

    def error_info(self, error):
        """The error answer for ``error`` (see :func:`error_info`)."""
        self.errors += 1
        return error_info(error, self.debug)

    def log_status(self):
        """Log this process's pid and how many calls it answered."""
        logger.info('worker pid %d: %d calls answered', os.getpid(), self.calls_answered)

    def status(self):
        """What this process is doing, as a dict of plain values."""
        return {'pid': os.getpid(), 'state': 'leaving' if self._leaving else 'serving',
                'answered': self.calls_answered, 'errors': self.errors,
                'in_hand': self._calls_in_hand(), 'uptime': time.time() - self.started,
                'last_method': self.last_method}

    def _calls_in_hand(self):
        # Balanced: coroutines and asynchronous work running; queue: the one
        # coroutine whose answer the REP socket waits for.
        return self._running + int(self._in_hand is not None)

    def start(self):
        """Serve calls until a ``shutdown`` command or the process is stopped."""
        # Never take calls or commands from a socket another user put there.
        check_socket_path(self.socket_address, binding=False)
        if self.control_socket_address:
            check_socket_path(self.control_socket_address, binding=False)
        self._context = zmq.Context()
        self._io_loop = IOLoop(make_current=False)
        balanced = self.dispatch == 'balanced'
        self._socket = self._context.socket(zmq.DEALER if balanced else zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        # A REP socket drops an answer its outgoing queue has no room for:
        # never let it (docs/protocol.rst, "No silent drops").
        self._socket.setsockopt(zmq.SNDHWM, 0)
        if self.max_message_size and self.max_message_size > 0:
            self._socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_size)
        self._socket.connect(self.socket_address)
        handler = self._on_balanced_event if balanced else self._on_call_event
        self._io_loop.add_handler(self._socket.getsockopt(zmq.FD), handler, IOLoop.READ)
        if balanced:
            self._beat()
        if self.control_socket_address:
            # The service binds the control socket; a worker says who it is,
            # and the service sends it the commands it is given.
            self._control = self._context.socket(zmq.DEALER)
            self._control.setsockopt(zmq.LINGER, 0)
            self._control.connect(self.control_socket_address)
            self._control.send_multipart([_CONTROL_HELLO, str(os.getpid()).encode('ascii')])
            self._io_loop.add_handler(self._control.getsockopt(zmq.FD),
                                      self._on_control_event, IOLoop.READ)
            self._io_loop.add_callback(self._on_control_event, None, None)
        # Calls may already be waiting: the descriptor only signals changes.
        self._io_loop.add_callback(handler, None, None)
        logger.debug('worker pid %d serving %s', os.getpid(), self.socket_address)
        try:
            self._io_loop.start()
        finally:
            self._close()

    def stop(self):
        """Stop serving (thread-safe)."""
        if self._io_loop is not None:
            self._io_loop.add_callback(self._io_loop.stop)

    def _close(self):
        if self._heartbeat is not None:
            self._io_loop.remove_timeout(self._heartbeat)
        for socket in (self._socket, self._control):
            if socket is not None:
                self._io_loop.remove_handler(socket.getsockopt(zmq.FD))
        if self._control is not None:
            self._control.close(0)
        # Leaving gracefully, the last answers may still be queued.
        self._socket.close(int(_LEAVING_LINGER * 1000) if self._left_gracefully else 0)
        self._io_loop.close(all_fds=False)
        self._context.term()

    def _on_control_event(self, fd, events):
        while self._control.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            message = self._control.recv_multipart()
            if len(message) != 2 or message[0] != CONTROL_PREFIX:
                continue
            command = message[1][:32].decode('ascii', 'replace')
            if command == 'shutdown':
                self._leave()
            elif command == 'status':
                self.log_status()
                try:
                    self._control.send_multipart(
                        [_dispatch.STATUS, json.dumps(self.status()).encode('utf-8')],
                        zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the service has gone
            else:
                logger.warning('worker pid %d: unknown command %r', os.getpid(), command)

    def _leave(self):
        """Take no more calls; end once the calls in hand are answered."""
        if self._leaving:
            return
        self._leaving = True
        logger.info('worker pid %d: leaving: answering the %d calls in hand first',
                    os.getpid(), self._calls_in_hand())
        if self.dispatch == 'balanced':
            # Room for no calls: the router sends no more, and says so.
            self._window = 0
            self._send_state()
        else:
            self._released = True
            self._end_if_done()

    def _end_if_done(self):
        if self._released and self._leaving and not self._calls_in_hand():
            logger.info('worker pid %d: every call answered (%d in all): leaving',
                        os.getpid(), self.calls_answered)
            self._left_gracefully = True
            self._io_loop.stop()

    def _on_call_event(self, fd, events):
        # Sending a reply may swallow the descriptor's next signal, so loop
        # on the socket state until no call is waiting.  Every call after
        # the first of a pass was queued while this process was busy.
        if self._in_hand is not None or self._leaving:
            return  # resumed once the coroutine in hand has its answer out
        socket = self._socket
        saturation = self._saturation
        saturation.start(self.calls_answered)
        while not socket.closed and socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            saturation.check(self.calls_answered)
            frames = socket.recv_multipart()
            after_reply = running = None
            try:
                reply, after_reply, running = self._handle(frames)
            except Exception as error:  # a bug here must not stop the worker
                logger.exception('worker failed to handle a call')
                reply = [frames[0] if frames else b'',
                         self._encode_response({'error': self.error_info(error)})]
            if running is not None:
                self._in_hand = reply[0]
                self._io_loop.add_future(running, functools.partial(self._on_awaited, reply[0]))
                break
            socket.send_multipart(reply)
            self.calls_answered += 1
            if after_reply is not None:
                self._run_detached(after_reply)
        saturation.stop(self.calls_answered)

    # -- balanced dispatch: a DEALER that tells the router what it can take --

    def _beat(self):
        # Not a PeriodicCallback: that starts on IOLoop.current(), and this
        # loop is never made current.
        self._send_state()
        self._heartbeat = self._io_loop.call_later(_dispatch.HEARTBEAT_INTERVAL, self._beat)

    def _send_state(self, envelope=b'', *payload):
        # Every message says how many calls this worker has finished and how
        # many unfinished ones it accepts; an answer's envelope and payload
        # follow.
        if self._socket.closed:
            return
        head = _dispatch.worker_state(self._finished, self._window) + envelope
        if payload:
            self._socket.send(head, _SNDMORE)
            self._socket.send(payload[0])
        else:
            self._socket.send(head)
        if not self._check_scheduled:
            # The descriptor only signals changes, and a send can swallow the
            # signal that a call arrived: look at the socket again.
            self._check_scheduled = True
            self._io_loop.add_callback(self._on_balanced_event, None, None)

    def _on_balanced_event(self, fd, events):
        self._check_scheduled = False
        socket = self._socket
        # The router logs saturation: here calls queue only up to the window.
        while (not socket.closed and self._running < self.method_concurrency
               and socket.getsockopt(_EVENTS) & _POLLIN):
            frames = socket.recv_multipart()
            if len(frames) == 1 and frames[0] == _dispatch.RELEASED:
                # Leaving: every call the router sent came before this.
                self._released = True
                self._end_if_done()
                continue
            if len(frames) == 1 and frames[0] == _dispatch.PROBE:
                continue  # the router checking that this connection is open
            if len(frames) != 2:
                # Counted as finished all the same, or the router would keep
                # a place for it in this worker's window for good.
                self._finished += 1
                logger.warning('worker pid %d: dropped a message of %d frames from the '
                               'router (a --dispatch=queue router?)', os.getpid(), len(frames))
                self._send_state()
                continue
            # The router's envelope stands in for the message id: it comes
            # back with the answer as it came.
            after_reply = running = None
            try:
                reply, after_reply, running = self._handle(frames)
            except Exception as error:  # a bug here must not stop the worker
                logger.exception('worker failed to handle a call')
                reply = [frames[0], self._encode_response({'error': self.error_info(error)})]
            if running is not None:
                self._running += 1
                self._io_loop.add_future(running, functools.partial(
                    self._on_awaited_balanced, reply[0]))
                continue
            if after_reply is None:
                self._finished += 1
                self._send_state(*reply)
                self.calls_answered += 1
                continue
            # Asynchronous: acknowledged first; the call stays unfinished, in
            # the router's eyes too, until its work is over.
            self._send_state(*reply)
            self.calls_answered += 1
            if self._run_detached(after_reply, self._on_detached_done):
                self._running += 1
            else:
                self._finished += 1
                self._send_state()

    def _on_awaited_balanced(self, envelope, running):
        self._running -= 1
        self._finished += 1
        try:
            response = running.result()
        except BaseException as error:  # a cancelled Future raises no Exception
            response = {'error': self.error_info(error)}
        self._send_state(envelope, self._encode_response(response))
        self.calls_answered += 1
        if self._leaving:
            self._end_if_done()

    def _on_detached_done(self):
        self._running -= 1
        self._finished += 1
        self._send_state()
        if self._leaving:
            self._end_if_done()

    def _on_awaited(self, message_id, running):
        self._in_hand = None
        try:
            response = running.result()
        except BaseException as error:  # a cancelled Future raises no Exception
            # The REP socket must answer whatever happened, or take no call again.
            response = {'error': self.error_info(error)}
        if self._socket.closed:
            return
        self._socket.send_multipart([message_id, self._encode_response(response)])
        self.calls_answered += 1
        if self._leaving:
            self._end_if_done()
            return
        self._on_call_event(None, None)  # calls that queued meanwhile

    def _run_detached(self, run, on_done=None):
        return _run_detached(run, self._io_loop, self.error_info, on_done)

    def _handle(self, frames):
        """Return the reply frames for a call; for an asynchronous method, the
        function to run once the acknowledgement is sent; for a coroutine
        method, the Future of its result (the reply then holds only the id)."""
        message_id = frames[0]
        if len(frames) != 2:
            error = TotoException(ERROR_SERVER, 'malformed call: %d frames' % len(frames))
            reply = [message_id, self._encode_response({'error': self.error_info(error)})]
            if self._metrics is not None:
                self._metrics.rejected()
            return reply, None, None
        method = None
        try:
            message = self._codec.loads(frames[1])
            method = find_method(self.method_module, message['method']).invoke
            self.last_method = message['method']
            if self._metrics is not None:
                method = self._metrics.timed(message['method'], method)
            parameters = message.get('parameters', {})
            if getattr(method, 'asynchronous', False):
                return [message_id], functools.partial(method, self, parameters), None
            response = method(self, parameters)
            if _is_awaitable(response):
                return [message_id], None, gen.convert_yielded(response)
        except Exception as error:
            if method is None and self._metrics is not None:
                self._metrics.rejected()
            response = {'error': self.error_info(error)}
        return [message_id, self._encode_response(response)], None, None

    def _encode_response(self, response):
        try:
            return self._codec.dumps(response)
        except Exception as error:
            return self._codec.dumps({'error': self.error_info(error)})


def send_control_command(command, address):
    """Send ``command`` to the worker service whose control socket is ``address``.

    ``shutdown`` stops the service gracefully, ``reload`` replaces its
    worker processes one at a time with ones running the method modules as
    they are on disk now, and ``status`` has each worker process log its
    count of answers.  Returns how many worker processes the command
    reached (for ``status``: how many the service asked, see
    :func:`service_status` for what they said); raises
    :exc:`RuntimeError` when no service answers within a few seconds or the
    service refuses the command (a reload whose new code does not import).
    """
    kind, value = _control_request(command, address)
    if kind == _dispatch.STATUS:
        return len(value['workers'])
    return value


def service_status(address):
    """The status of the worker service whose control socket is ``address``.

    A dict of plain values: ``service`` (the supervising process), ``router``
    (None when the service runs none, or it did not answer) and
    ``workers``, one dict per worker process (``pid``, ``state``,
    ``answered``, ``errors``, ``in_hand``, ``uptime``, ``last_method``).
    Raises :exc:`RuntimeError` when no service answers within a few seconds.
    """
    return _control_request('status', address)[1]


def _control_request(command, address):
    """Send ``command``; return the service's answer as (kind, decoded value)."""
    if command not in CONTROL_COMMANDS:
        raise ValueError('unknown command %r: use one of %s'
                         % (command, ', '.join(CONTROL_COMMANDS)))
    check_socket_path(address, binding=False)
    context = zmq.Context()
    requester = context.socket(zmq.DEALER)
    requester.setsockopt(zmq.LINGER, 0)
    try:
        requester.connect(address)
        requester.send_multipart([CONTROL_PREFIX, command.encode('ascii')])
        deadline = time.time() + _CONTROL_ANSWER_WAIT
        while True:
            remaining = deadline - time.time()
            if remaining <= 0 or not requester.poll(remaining * 1000):
                raise RuntimeError('no worker service answered on %s within %.0f s'
                                   % (address, _CONTROL_ANSWER_WAIT))
            answer = requester.recv_multipart()
            if len(answer) != 2:
                continue
            kind, value = answer
            if kind == _CONTROL_SENT and value.isdigit():
                return kind, int(value)
            if kind == _CONTROL_REFUSED:
                raise RuntimeError('the worker service refused %r: %s'
                                   % (command, value.decode('utf-8', 'replace')))
            if kind == _dispatch.STATUS:
                try:
                    return kind, json.loads(value.decode('utf-8'))
                except ValueError:
                    continue
    finally:
        requester.close(0)
        context.term()


# The service's answers to a command: how many worker processes it reached,
# or why it would not do it.
_CONTROL_SENT = b'sent'
_CONTROL_REFUSED = b'refused'


class _StatusRequest(object):
    """A ``status`` command waiting for the answers of the processes it asked."""

    def __init__(self, sender, service, asked, router, deadline):
        self.sender = sender
        self.service = service
        self.asked = asked  # routing id -> pid
        self.router = router  # the router's routing id, or None
        self.deadline = deadline
        self.answers = {}  # routing id -> status document

    def document(self):
        workers = []
        router = None
        for peer, pid in sorted(self.asked.items(), key=lambda item: item[1]):
            answer = self.answers.get(peer)
            if peer == self.router:
                router = answer
            elif answer is not None:
                workers.append(answer)
            else:
                workers.append({'pid': pid, 'state': 'not answering'})
        return {'service': self.service, 'router': router, 'workers': workers}


class _ServiceControl(object):
    """The service's end of the control channel, in the service's parent process.

    Worker processes and the router connect and say their pid; ``--command``
    senders send a command, which :meth:`serve` hands to the service once
    every running worker process has said hello (or a second has passed).
    The service answers, and sends commands on, through the other methods.
    Anything else that arrives is dropped.
    """

    def __init__(self, address):
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # A worker process that has gone fails the send instead of
        # swallowing it silently.
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._workers = {}  # pid -> routing id
        self._router = None  # (pid, routing id)
        self._pending = []  # (sender, command, when to hand it on at the latest)
        self._status_requests = []
        try:
            self._claim = bind_private(self._socket, address)
        except Exception:
            self.close()
            raise

    def serve(self, timeout, processes, router=None):
        """Handle what arrives within ``timeout`` s; return the commands to run.

        Each is a ``(command, sender)`` pair; ``processes`` are the worker
        processes running now, and ``router`` the router process, if any.
        """
        ready = []
        deadline = time.time() + timeout
        while True:
            ready.extend(self._ready_commands(processes, router))
            self._answer_status_requests()
            now = time.time()
            if ready or now >= deadline:
                return ready
            wait = deadline - now
            if self._pending:
                wait = min(wait, max(self._pending[0][2] - now, 0))
            if self._status_requests:
                wait = min(wait, max(self._status_requests[0].deadline - now, 0))
            if self._socket.poll(wait * 1000):
                while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._on_message(self._socket.recv_multipart())

    def knows(self, pid):
        """Whether the worker process ``pid`` has said hello."""
        return pid in self._workers

    @property
    def router_pid(self):
        return self._router[0] if self._router is not None else None

    def _on_message(self, message):
        if len(message) != 3:
            return
        peer, kind, value = message
        if kind == _CONTROL_HELLO and value.isdigit():
            self._workers[int(value)] = peer
        elif kind == _dispatch.ROUTER_HELLO and value.isdigit():
            self._router = (int(value), peer)
        elif kind == _dispatch.STATUS:
            try:
                document = json.loads(value.decode('utf-8'))
            except ValueError:
                return
            for request in self._status_requests:
                if peer in request.asked:
                    request.answers[peer] = document
        elif kind == CONTROL_PREFIX:
            command = value[:32].decode('ascii', 'replace')
            if command not in CONTROL_COMMANDS:
                logger.warning('unknown control command %r', command)
                return
            self._pending.append((peer, command, time.time() + _HELLO_WAIT))

    def _ready_commands(self, processes, router):
        """The commands waiting, once every running process said hello.

        A command waits (up to _HELLO_WAIT) until every running worker
        process, and the router, has said hello: one just started may not
        have yet.
        """
        if not self._pending:
            return []
        # Processes that ended are forgotten when a send to them fails: a
        # process being replaced is not among ``processes`` but is still here.
        alive = set(process.pid for process in processes if process.is_alive())
        waiting = not alive.issubset(self._workers) or (
            router is not None and router.is_alive() and self._router is None)
        if waiting and time.time() < self._pending[0][2]:
            return []
        ready = [(command, peer) for peer, command, _deadline in self._pending]
        self._pending = []
        return ready

    def _send(self, peer, *frames):
        try:
            self._socket.send_multipart([peer] + list(frames), zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False  # it has gone

    def send_to_workers(self, command, pids=None):
        """Send ``command`` to the worker processes (those in ``pids``); return how many."""
        reached = len(self._command_workers(command, pids))
        if pids is None:
            logger.info('control command %r: passed on to %d worker process%s', command,
                        reached, '' if reached == 1 else 'es')
        return reached

    def _command_workers(self, command, pids=None):
        """Send ``command`` to the worker processes; return ``{routing id: pid}`` reached.

        A process the send fails for has ended, and is forgotten.
        """
        reached = {}
        for pid, worker in list(self._workers.items()):
            if pids is not None and pid not in pids:
                continue
            if self._send(worker, CONTROL_PREFIX, command.encode('ascii')):
                reached[worker] = pid
            else:
                del self._workers[pid]
        return reached

    def send_to_router(self, command):
        """Send ``command`` to the router; False when it has not said hello."""
        if self._router is None:
            return False
        return self._send(self._router[1], CONTROL_PREFIX, command.encode('ascii'))

    def answer(self, sender, count):
        self._send(sender, _CONTROL_SENT, str(count).encode('ascii'))

    def refuse(self, sender, reason):
        self._send(sender, _CONTROL_REFUSED, reason.encode('utf-8', 'replace'))

    def request_status(self, sender, service):
        """Ask every process for its status; answer ``sender`` when all did."""
        asked = self._command_workers('status')
        router = None
        if self._router is not None and self.send_to_router('status'):
            router = self._router[1]
            asked[router] = self._router[0]
        self._status_requests.append(_StatusRequest(sender, service, asked, router,
                                                    time.time() + _STATUS_WAIT))

    def _answer_status_requests(self):
        now = time.time()
        waiting = []
        for request in self._status_requests:
            if len(request.answers) < len(request.asked) and now < request.deadline:
                waiting.append(request)
                continue
            self._send(request.sender, _dispatch.STATUS,
                       json.dumps(request.document()).encode('utf-8'))
        self._status_requests = waiting

    def close(self):
        self._socket.close(0)
        self._context.term()
        remove_if_unchanged(getattr(self, '_claim', None))


def run_router(bind_address, socket_address, max_message_size=None, curve_secret_key=None,
               curve_authorized_keys=None, on_ready=None, dispatch='queue',
               saturation_warning_after=5.0, compression=None, serialization=None,
               control_socket_address=None):
    """Run the router: clients' ROUTER in front, the worker processes behind.

    With ``dispatch='balanced'`` (what :class:`TotoWorkerService` runs by
    default) it is a :class:`toto._dispatch.LoadBalancer`: each call goes to
    a worker with room for it, and calls that are not a call's frames or are
    larger than ``max_message_size`` in all are dropped; ``compression`` and
    ``serialization`` encode its answer to a malformed call.  With
    ``'queue'`` (the default here, as in the original package) it is a
    queue device with a ``DEALER`` behind, for ``REP`` workers.

    Blocks until the process is stopped.  With ``curve_secret_key`` the
    client side is a CURVE server: clients must know its public key, and when
    ``curve_authorized_keys`` names a directory of public certificates only
    those clients are let in.  ``max_message_size`` bytes is the largest call
    accepted; a client sending more is disconnected.  ``on_ready`` is
    called once both sockets are bound.

    With balanced dispatch and a ``control_socket_address`` (the service's
    control socket) the router takes ``status`` and ``drain`` commands
    from the service there; after a drain it returns once every call it
    took is answered.
    """
    _check_dispatch(dispatch)
    # Before any socket or thread exists, so a bad key fails fast and cleanly.
    secret = _check_curve(curve_secret_key, curve_authorized_keys)
    balanced = dispatch == 'balanced'
    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    backend = context.socket(zmq.ROUTER if balanced else zmq.DEALER)
    authenticator = None
    control = None
    # Answers still on their way to clients when the router has drained.
    linger = 0
    try:
        # A ROUTER drops an answer when its queue to that client is full;
        # unbounded, it holds answers until the client reads them.  Clients
        # bound what they have in flight (--worker_max_in_flight), so this
        # costs memory only for a client that stops reading.
        frontend.setsockopt(zmq.SNDHWM, 0)
        # Answers from the workers are never held back on their way out.
        backend.setsockopt(zmq.RCVHWM, 0)
        if balanced:
            # A call for a worker that has gone raises, and goes elsewhere.
            backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
            backend.setsockopt(zmq.SNDHWM, 0)
        if max_message_size and max_message_size > 0:
            frontend.setsockopt(zmq.MAXMSGSIZE, max_message_size)
        if secret is not None:
            authenticator = _start_authenticator(context, curve_authorized_keys)
            frontend.setsockopt(zmq.CURVE_SERVER, 1)
            frontend.setsockopt(zmq.CURVE_SECRETKEY, secret)
            frontend.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret))
        if balanced and control_socket_address:
            check_socket_path(control_socket_address, binding=False)
            control = context.socket(zmq.DEALER)
            control.setsockopt(zmq.LINGER, 0)
            control.connect(control_socket_address)
            control.send_multipart([_dispatch.ROUTER_HELLO, str(os.getpid()).encode('ascii')])
        if balanced:
            # Made before the bind, so its monitor counts every client.
            balancer = _dispatch.LoadBalancer(
                frontend, backend, max_message_size, saturation_warning_after,
                MessageCodec(compression, serialization), control)
        frontend.bind(bind_address)
        bind_private(backend, socket_address)
        if on_ready is not None:
            on_ready()
        if balanced:
            balancer.run()
            linger = int(_DRAINED_LINGER * 1000)
        else:
            zmq.proxy(frontend, backend)
    finally:
        if authenticator is not None:
            authenticator.stop()
        if control is not None:
            control.close(0)
        frontend.close(linger)
        backend.close(0)
        context.term()


def _start_authenticator(context, authorized_keys):
    from zmq.auth.thread import ThreadAuthenticator
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    if authorized_keys:
        authenticator.configure_curve(domain='*', location=authorized_keys)
    else:
        import zmq.auth
        authenticator.configure_curve(domain='*', location=zmq.auth.CURVE_ALLOW_ANY)
    return authenticator


def _router_process(report, *args, **kwargs):
    import signal
    # Stopping the router is the parent's business: SIGTERM ends it at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run_router(*args, on_ready=lambda: report.send(None), **kwargs)
    except Exception as error:
        report.send('%s: %s' % (type(error).__name__, _text(error)))
        raise


def _start_router_process(*args, **kwargs):
    """Start the router in a process; raise if it cannot bind or start."""
    parent_end, child_end = multiprocessing.Pipe(duplex=False)
    router = multiprocessing.Process(target=_router_process, name='toto-router',
                                     args=(child_end,) + args, kwargs=kwargs)
    router.daemon = True
    router.start()
    child_end.close()
    failure = 'the router process exited without binding'
    if parent_end.poll(_ROUTER_START_WAIT):
        try:
            failure = parent_end.recv()
        except EOFError:
            pass
    else:
        failure = 'the router did not bind within %.0f s' % _ROUTER_START_WAIT
    parent_end.close()
    if failure is not None:
        router.terminate()
        router.join()
        raise RuntimeError('cannot start the worker router: %s' % failure)
    return router


class _RollingReload(object):
    """A reload under way: worker processes replaced one at a time.

    For each, a new process starts first; once it has said hello on the
    control channel the old one is told to leave, and the next begins once
    the old one has answered what it held and ended.  The router keeps its
    clients' connections all along, and holds calls while no worker has
    room, so none is lost.
    """

    def __init__(self, service_ids):
        self.waiting = list(service_ids)
        self.started = time.time()
        self.replaced = 0
        self.current = None  # (service_id, old process)
        self.leaving = False
        self.since = None

    def step(self, service):
        """Move the reload on; False once it is over."""
        now = time.time()
        processes = service._processes
        if self.current is None:
            while self.waiting:
                service_id = self.waiting.pop(0)
                old = processes[service_id]
                if not old.is_alive():
                    continue  # being restarted already, from the new code
                processes[service_id] = service._replace_process(service_id, 'for a reload')
                self.current = (service_id, old)
                self.leaving = False
                self.since = now
                break
            else:
                logger.info('reload done: %d worker process%s replaced in %.1f s',
                            self.replaced, '' if self.replaced == 1 else 'es',
                            now - self.started)
                return False
        service_id, old = self.current
        new = processes[service_id]
        if not self.leaving:
            if service._control.knows(new.pid):
                service._control.send_to_workers('shutdown', pids=(old.pid,))
                self.leaving = True
                self.since = now
            elif now - self.since > _RELOAD_START_WAIT:
                logger.error('reload stopped: the new %s process (pid %d) did not say it '
                             'was ready within %.0f s; the old one (pid %d) goes on', new.name,
                             new.pid, _RELOAD_START_WAIT, old.pid)
                new.terminate()
                new.join(_LEAVING_LINGER)
                processes[service_id] = old
                return False
        elif not old.is_alive():
            old.join()
            service._process_ended(old)
            self.replaced += 1
            logger.info('%s process (pid %d) %s: replaced by pid %d (reload)', old.name,
                        old.pid, _exit_reason(old.exitcode), new.pid)
            self.current = None
        elif now - self.since > options.shutdown_timeout:
            logger.warning('%s process (pid %d) still has calls after --shutdown_timeout '
                           '(%g s): stopping it', old.name, old.pid, options.shutdown_timeout)
            old.terminate()
            self.since = now
        return True

    def abandon(self):
        """The old process being replaced, if any (the service is stopping)."""
        self.waiting = []
        return self.current[1] if self.current is not None else None


def _reimport_methods(name):
    """Import the method package ``name`` again from its files.

    Its modules leave ``sys.modules``, so worker processes started after
    this import every method afresh.  When the package does not import, or
    a source file in it does not compile (methods are imported on first
    call, so they are compiled here, not run), the old modules are put back
    and the error is raised.
    """
    def ours(module_name):
        return module_name == name or module_name.startswith(name + '.')

    old_modules = dict((key, module) for key, module in sys.modules.items() if ours(key))
    for key in old_modules:
        del sys.modules[key]
    if hasattr(importlib, 'invalidate_caches'):
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
        _compile_sources(getattr(module, '__path__', None) or [])
    except BaseException:
        for key in [key for key in sys.modules if ours(key)]:
            del sys.modules[key]
        sys.modules.update(old_modules)
        parent, _, child = name.rpartition('.')
        if parent in sys.modules and name in old_modules:
            setattr(sys.modules[parent], child, old_modules[name])
        raise


def _compile_sources(folders):
    """Compile every ``.py`` file under ``folders``; raise the first error.

    The cached bytecode of each goes first: Python 2 tells a stale ``.pyc``
    only by the source's modification time, to the second, so a file
    changed within the second it was last compiled would run its old code.
    """
    for folder in folders:
        for directory, subfolders, names in os.walk(folder):
            subfolders[:] = [sub for sub in subfolders if not sub.startswith(('.', '_'))]
            for file_name in sorted(names):
                if file_name.endswith('.py'):
                    path = os.path.join(directory, file_name)
                    for cached in _bytecode_paths(path):
                        try:
                            os.remove(cached)
                        except OSError:
                            pass  # none, or not ours to remove
                    with open(path, 'rb') as source:
                        compile(source.read(), path, 'exec', dont_inherit=True)


def _bytecode_paths(path):
    try:
        from importlib.util import cache_from_source
    except ImportError:  # Python 2: beside the source
        return [path + 'c', path + 'o']
    return [cache_from_source(path)] + [cache_from_source(path, optimization=level)
                                        for level in (1, 2)]


class TotoWorkerService(TotoService):
    """Run a router and worker processes for the methods in ``method_module``.

    Options (keyword arguments, conf file or command line): ``method_module``,
    ``worker_bind_address``, ``worker_socket_address``,
    ``control_socket_address``, ``command``, ``processes``, ``daemon``,
    ``pidfile``, ``debug``, ``startup_function``, ``compression_module``,
    ``serialization_module``, ``max_message_size``, ``curve_secret_key``,
    ``curve_authorized_keys``, ``shutdown_timeout``, ``metrics_port`` and
    ``metrics_address``.

    SIGTERM, ``--stop`` and ``--command=shutdown`` stop it gracefully: with
    balanced dispatch the router tells its clients it is draining, answers
    every call it took, and the service ends once it has (or after
    ``--shutdown_timeout`` seconds).  ``--command=reload`` replaces the
    worker processes one at a time with ones that run the method code as
    it is on disk now.
    """

    def _check_options(self):
        _check_service_options()

    _control = None
    _router_process = None
    _reload = None
    # Why the service was asked to stop (a signal, a command), until it starts to.
    _stop_requested = None
    _stop_deadline = None
    # What the stop waits for: 'router' (to drain), 'workers' (to end), or
    # 'now' (nothing: stop what is left).
    _stop_phase = None
    # Whether the router has been told to drain (it may not have said hello yet).
    _drain_sent = False
    _metrics_service = None

    def prepare(self):
        self._check_options()
        # Before any other process starts: they inherit where metrics go.
        self._metrics_service = _metrics.start_service(options.metrics_port,
                                                       options.metrics_address)
        self._socket_claims = []
        count = process_count()
        if count and options.method_module:
            # Import the methods in the parent so a broken module fails once,
            # at start-up, instead of in every worker process.
            importlib.import_module(options.method_module)
        if options.worker_bind_address:
            warn_once_if_exposed('the worker service', zmq_bind_host(options.worker_bind_address),
                                 options.serialization_module, options.curve_secret_key,
                                 advice='enable CURVE (--curve_secret_key)')
            router = _start_router_process(
                options.worker_bind_address, options.worker_socket_address,
                options.max_message_size, options.curve_secret_key,
                options.curve_authorized_keys, dispatch=options.dispatch,
                saturation_warning_after=options.saturation_warning_after,
                compression=options.compression_module or None,
                serialization=options.serialization_module or None,
                control_socket_address=self._control_address())
            self._router_process = router
            self._helper_processes.append(router)
            self._socket_claims.append(claim_of(options.worker_socket_address))
        if count == 0:
            logger.info('routing calls from %s to %s', options.worker_bind_address,
                        options.worker_socket_address)
        elif options.worker_bind_address:
            logger.info('%d worker process%s listening on %s', count,
                        '' if count == 1 else 'es', options.worker_bind_address)
        else:
            logger.info('%d worker process%s connecting to %s', count,
                        '' if count == 1 else 'es', options.worker_socket_address)

    @staticmethod
    def _control_address():
        # Only a service with worker processes binds a control socket.
        return (options.control_socket_address or None) if process_count() else None

    def _stops_gracefully(self, reason):
        if self._control is None or self._stop_requested is not None:
            return False  # a second request stops at once
        self._stop_requested = reason
        return True

    def _pause(self, timeout, processes):
        if self._control is None and self._control_address():
            # Bound once the worker processes are forked: they need none of
            # the parent's ZeroMQ state.
            self._control = _ServiceControl(self._control_address())
        if self._control is None:
            return super(TotoWorkerService, self)._pause(timeout, processes)
        if self._stopping:
            # Each step of a stop waits on the one before: look more often.
            timeout = min(timeout, _STOPPING_INTERVAL)
        router = self._router_process if options.dispatch == 'balanced' else None
        for command, sender in self._control.serve(timeout, processes, router):
            self._run_command(command, sender)
        if self._stop_requested is not None and not self._stopping:
            self._begin_stop(self._stop_requested)
        if self._reload is not None and not self._reload.step(self):
            self._reload = None
        return self._stopped()

    def _run_command(self, command, sender):
        alive = [process for process in self._processes if process.is_alive()]
        if command == 'status':
            self._control.request_status(sender, self._status())
        elif command == 'shutdown':
            self._control.answer(sender, len(alive))
            if self._stop_requested is None:
                self._stop_requested = 'a shutdown command'
        elif command == 'reload':
            refusal = self._start_reload()
            if refusal:
                logger.error('reload refused: %s', refusal)
                self._control.refuse(sender, refusal)
            else:
                self._control.answer(sender, len(alive))

    def _status(self):
        state = 'stopping' if self._stopping else 'reloading' if self._reload else 'serving'
        return {'pid': os.getpid(), 'state': state, 'uptime': time.time() - self._started,
                'processes': len(self._processes), 'dispatch': options.dispatch,
                'address': options.worker_bind_address or None}

    def _start_reload(self):
        """Begin a reload; the reason when it cannot begin."""
        if self._stopping:
            return 'the service is stopping'
        if self._reload is not None:
            return 'a reload is already under way'
        if options.dispatch != 'balanced':
            # A queue device hands calls to a REP process that cannot refuse
            # them: those queued for the process being replaced would be lost.
            return 'reload needs --dispatch=balanced'
        try:
            _reimport_methods(options.method_module)
        except Exception as error:
            return 'the method code of %s does not import or compile: %s: %s' % (
                options.method_module, type(error).__name__, shortened(_text(error), 200))
        logger.info('reload: replacing %d worker process%s one at a time',
                    len(self._processes), '' if len(self._processes) == 1 else 'es')
        self._reload = _RollingReload(range(len(self._processes)))
        return None

    def _begin_stop(self, reason):
        self._stopping = True
        self._stop_deadline = time.time() + options.shutdown_timeout
        if self._reload is not None:
            leaving = self._reload.abandon()
            if leaving is not None:
                self._retiring.append(leaving)
            self._reload = None
        router = self._router_process
        if router is not None and not router.is_alive():
            # Nothing can reach the worker processes any more: stop them now.
            logger.info('stopping (%s): the router has ended already', reason)
            self._stop_phase = 'now'
        elif options.dispatch == 'balanced' and router is not None:
            logger.info('stopping (%s): the router tells its clients and answers every '
                        'call it took, for up to %g s (--shutdown_timeout)', reason,
                        options.shutdown_timeout)
            self._stop_phase = 'router'
            self._drain_sent = self._control.send_to_router('drain')
        else:
            logger.info('stopping (%s): worker processes answer the calls in hand, for up '
                        'to %g s (--shutdown_timeout)', reason, options.shutdown_timeout)
            self._stop_phase = 'workers'
            self._control.send_to_workers('shutdown')

    def _stopped(self):
        """Whether the stop under way is over (or out of time)."""
        if not self._stopping or self._stop_deadline is None:
            return False
        if self._stop_phase == 'now':
            return True
        if time.time() > self._stop_deadline:
            logger.warning('stopping: --shutdown_timeout (%g s) is over: stopping the '
                           'processes still running', options.shutdown_timeout)
            return True
        if self._stop_phase == 'router':
            if not self._drain_sent:
                # Not said hello yet: it may still be starting.
                self._drain_sent = self._control.send_to_router('drain')
            if not self._router_process.is_alive():
                # Drained: the worker processes hold no calls any more.
                self._stop_phase = 'workers'
                for process in self._processes:
                    if process.is_alive():
                        process.terminate()
        return False

    def _process_ended(self, process):
        if self._metrics_service is not None:
            self._metrics_service.process_ended(process.pid)

    def _process_restarting(self, process):
        if self._metrics_service is not None:
            self._metrics_service.process_restarted()

    def finish(self):
        for process in self._retiring:
            process.terminate()
            process.join()
        if self._metrics_service is not None:
            self._metrics_service.close()
        if self._control is not None:
            self._control.close()
            self._control = None
        for claim in getattr(self, '_socket_claims', ()):
            remove_if_unchanged(claim)

    def main_loop(self):
        worker = TotoWorker(options.method_module, options.worker_socket_address,
                            control_socket_address=options.control_socket_address,
                            compression=options.compression_module or None,
                            serialization=options.serialization_module or None,
                            debug=options.debug, max_message_size=options.max_message_size,
                            saturation_warning_after=options.saturation_warning_after,
                            dispatch=options.dispatch,
                            method_concurrency=options.method_concurrency)
        worker.service_id = getattr(self, 'service_id', 0)
        if options.startup_function:
            call_startup_function(options.startup_function, worker)
        worker.start()

    def run(self):
        """Send ``--command`` to the running service, or run the service."""
        if options.command:
            reached = send_control_command(options.command, options.control_socket_address)
            logger.info('sent %r to %d worker process%s', options.command, reached,
                        '' if reached == 1 else 'es')
            return
        super(TotoWorkerService, self).run()


__all__ = ['TotoWorker', 'TotoWorkerService', 'find_method', 'error_info',
           'send_control_command', 'service_status', 'pid_path']
