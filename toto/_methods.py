"""Finding and running method modules: what the workers and the web handler share.

A Toto method is a module with an ``invoke(handler, parameters)`` function,
under a method package.  The ZeroMQ worker, the HTTP worker and the web
handler all find the module for a call's name, run it (plainly, as a
coroutine, or as an ``@asynchronous`` method whose work goes on after the
acknowledgement) and turn what it raises into an error answer::

    from toto import _methods

    methods = importlib.import_module('methods')
    invoke = _methods.find_method(methods, 'account.lookup').invoke
    try:
        result = invoke(worker, {'id': 7})
    except Exception as error:
        result = {'error': _methods.error_info(error)}

This module imports nothing above :mod:`toto.exceptions`.
"""

from __future__ import absolute_import, division, print_function

import functools
import importlib
import inspect
import logging
import re
import sys
import threading
import time
import types

import six
from tornado import gen
from tornado.concurrent import is_future

from toto._security import shortened
from toto.exceptions import ERROR_SERVER, TotoException

try:
    from inspect import isawaitable as _isawaitable
except ImportError:  # Python 2 has no native coroutines
    _isawaitable = None

logger = logging.getLogger('toto.calls')


def is_awaitable(value):
    """True for Futures and, on Python 3, coroutines and other awaitables.

    A method whose ``invoke`` returns one of these (a ``@gen.coroutine``, an
    ``async def``, or a function returning a Future) is awaited, and its
    answer is what the awaitable resolves to.
    """
    return is_future(value) or (_isawaitable is not None and _isawaitable(value))


def run_detached(run, io_loop, report, on_done=None):
    """Run an asynchronous method after its acknowledgement.

    Nobody waits for its answer, so ``report`` (which logs) gets what
    ``run()`` raises, or what the coroutine it returns fails with.  True when
    it goes on as a coroutine; ``on_done`` is then called once that ends.
    """
    try:
        result = run()
        if is_awaitable(result):
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
    """Return what runs the call ``name`` under ``method_module``: it has ``invoke``.

    ``'a.b'`` is ``method_module.a.b``; submodules are imported on first use,
    so a package need not import them itself.  As in 1.0.12, the chain may go
    on through attributes, to a class (or an object) with an ``invoke``,
    provided it is defined in a module of the method package.  When
    ``method_module`` is dotted (``app.methods``), a name may also start
    with the part below the top package (``methods.a.b``), which is how
    1.0.12 resolved calls to such a package.

    A name that does not resolve raises ``AttributeError``, as in 1.0.12.
    Unlike 1.0.12, a name resolves only to what the method package defines,
    or to the built-in methods of :mod:`toto.methods` that it imports: not
    through another module it imports (``methods.json.decoder``), and names
    with private parts (``_x``), parts that are not identifiers, or more than
    512 characters never resolve.
    """
    if not isinstance(name, six.string_types) or not name:
        raise AttributeError('method name must be a non-empty string, not %s'
                             % shortened(repr(name)))
    if len(name) > _MAX_METHOD_NAME or not all(_is_method_part(part)
                                               for part in name.split('.')):
        raise AttributeError('%s is not a method name' % shortened(repr(name)))
    try:
        return _resolve(method_module, name)
    except AttributeError:
        below_top = method_module.__name__.partition('.')[2]
        if not below_top or not name.startswith(below_top + '.'):
            raise
        return _resolve(method_module, name[len(below_top) + 1:])


def _resolve(method_module, name):
    package = method_module.__name__
    target = method_module
    for part in name.split('.'):
        try:
            target = getattr(target, part)
        except AttributeError as lookup_error:
            if not isinstance(target, types.ModuleType):
                raise
            target = _import_submodule(target, part, lookup_error)
        home = _home_of(target)
        if not (_inside(home, package) or _inside(home, BUILTIN_METHODS)):
            raise AttributeError('%r is not a method of %s' % (name, package))
    return target


#: The built-in methods (``account.login``...): a method package may offer
#: them by importing them, as 1.0.12's templates do
#: (``import toto.methods.account.login as login`` in ``methods/account``).
BUILTIN_METHODS = 'toto.methods'


def _home_of(target):
    """The name of the module that defines ``target``, or None."""
    if isinstance(target, types.ModuleType):
        return target.__name__
    if isinstance(target, (types.FunctionType, types.BuiltinFunctionType)):
        return None  # a function is not a method: only a module, class or object
    home = getattr(target, '__module__', None)
    if not isinstance(home, six.string_types):
        home = getattr(type(target), '__module__', None)
    return home if isinstance(home, six.string_types) else None


def _inside(module_name, package):
    return module_name is not None and (
        module_name == package or module_name.startswith(package + '.'))


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

    Callers choose what a call raises, so the log takes one line per kind of
    error (its class and code) every :data:`LOG_INTERVAL` seconds, with the
    count of those it left out (see :class:`RateLimitedLog`).
    """
    code = getattr(error, 'code', None) if isinstance(error, TotoException) else None
    kind = (type(error).__name__, code if isinstance(code, six.integer_types) else None)
    if not isinstance(error, TotoException):
        error = TotoException(ERROR_SERVER, error_text(error))
    _error_log.log(logging.ERROR, kind, '%s', error, exc_info=bool(debug))
    return dict(error.__dict__)


def flush_error_log():
    """Log the count of error lines :func:`error_info` left out, once their interval is over.

    A process calls it now and then (a worker process with its heartbeat), so
    that the count of a flood that has stopped is logged too.
    """
    _error_log.flush()


#: A line a peer can make a process log is logged at most this often (in
#: seconds) for each kind of line, with the count of the ones left out; 0
#: logs every line, as 1.0.12 did.
LOG_INTERVAL = 10.0


class RateLimitedLog(object):
    """Log each kind of line at most once per ``interval`` seconds, with a count.

    For lines a peer can make a process write once per message (a junk frame,
    a call to a method that does not exist): the first of a kind is logged at
    once; the ones after it within ``interval`` are counted, and the next one
    logged (or :meth:`flush`, once the interval is over) says how many were
    left out::

        refusals = RateLimitedLog(logging.getLogger('toto.worker.router'))
        refusals.log(logging.WARNING, 'envelope', 'dropped a message without an envelope')

    ``kind`` is any hashable value; at most ``max_kinds`` kinds are told apart
    (later ones share one count), so a peer cannot grow the table.  Without
    an ``interval`` it is :data:`LOG_INTERVAL` at the time of each line; 0
    logs every line.
    """

    def __init__(self, logger, interval=None, max_kinds=100):
        self.logger = logger
        self._interval = interval
        self.max_kinds = max_kinds
        # kind -> [when last logged, lines left out since, the latest left out]
        self._kinds = {}
        self._lock = threading.Lock()

    @property
    def interval(self):
        return LOG_INTERVAL if self._interval is None else self._interval

    def log(self, level, kind, message, *args, **kwargs):
        """Log ``message % args`` at ``level``, unless a line of ``kind`` was logged lately.

        Returns True when the line was logged.  ``kwargs`` go to
        :meth:`logging.Logger.log` (``exc_info``).
        """
        now = time.time()
        interval = self.interval
        with self._lock:
            state = self._kinds.get(kind)
            if state is None:
                if len(self._kinds) >= self.max_kinds:
                    kind = _OTHER_KINDS
                    state = self._kinds.get(kind)
                if state is None:
                    state = self._kinds[kind] = [None, 0, None]
            if state[0] is not None and now - state[0] < interval:
                state[1] += 1
                state[2] = (level, message, args)
                return False
            left_out, since = state[1], state[0]
            state[0], state[1], state[2] = now, 0, None
        self._emit(level, message, args, left_out, since, now, kwargs)
        return True

    def flush(self):
        """Log the count of the lines left out of each kind whose interval is over."""
        now = time.time()
        interval = self.interval
        due = []
        with self._lock:
            for state in self._kinds.values():
                if state[1] and now - state[0] >= interval:
                    due.append((state[2], state[1], state[0]))
                    state[0], state[1], state[2] = now, 0, None
        for (level, message, args), left_out, since in due:
            # The line logged is the latest left out: the count is of the others.
            self._emit(level, message, args, left_out - 1, since, now, {})

    def _emit(self, level, message, args, left_out, since, now, kwargs):
        if left_out:
            message += ' (and %d more like it in the last %.0f s, not logged)'
            args = tuple(args) + (left_out, now - since)
        if _HAS_STACKLEVEL:
            # The record names the code that called log() or flush(), not this.
            kwargs = dict(kwargs, stacklevel=3)
        self.logger.log(level, message, *args, **kwargs)


_HAS_STACKLEVEL = sys.version_info >= (3, 8)


# The kind every kind past RateLimitedLog.max_kinds is counted under.
_OTHER_KINDS = ('other',)
_error_log = RateLimitedLog(logger)


def error_text(error):
    try:
        return str(error)
    except UnicodeError:  # Python 2: a unicode message that is not ASCII
        return six.text_type(error)


def call_startup_function(path, worker, db_connection=None):
    """Import and call ``module.function`` with the worker and the database connection.

    1.0.12 passed ``worker`` and ``db_connection`` (the worker's, when
    ``db_connection`` is not given); functions that take only some of those
    keywords get only those.  Unlike 1.0.12, which used the first two
    dotted parts only, the module may be a dotted path.
    """
    if db_connection is None:
        db_connection = getattr(worker, 'db_connection', None)
    return call_with_accepted(path, {'worker': worker, 'db_connection': db_connection})


def call_with_accepted(path, available):
    """Import ``module.function`` (``path``) and call it with the ``available`` keywords it takes.

    A function with ``**kwargs`` gets them all; others get those they name,
    so a start-up function written for 1.0.12 (or one that needs nothing)
    is called as it expects.
    """
    module_name, _, function_name = path.rpartition('.')
    if not module_name:
        raise ValueError('a start-up function is module.function, not %r' % (path,))
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        spec = inspect.getfullargspec(function)
        accepts_all = spec.varkw is not None
    except AttributeError:  # Python 2
        spec = inspect.getargspec(function)
        accepts_all = spec.keywords is not None
    if accepts_all:
        return function(**available)
    return function(**dict((k, v) for k, v in available.items() if k in spec.args))
