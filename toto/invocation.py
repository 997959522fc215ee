"""Decorators for method modules, and the names a method module star-imports.

A Toto method is a module with an ``invoke(handler, parameters)`` function.
Method modules start with ``from toto.invocation import *``, which brings the
decorators below, :class:`~toto.exceptions.TotoException` and the
``ERROR_*`` codes, and the names 1.0.12 gave them (``options``,
``coroutine``, ``Return``, ``engine``, ``TaskQueue``, ``json``,
``logging``, ``format_exc``)::

    from toto.invocation import *

    @requires('user_id', 'amount')
    @default_parameters({'currency': 'EUR'})
    def invoke(handler, parameters):
        return {'charged': parameters['amount'], 'in': parameters['currency']}

The decorators copy the attributes in :data:`invocation_attributes` from
the function they wrap (``asynchronous`` among them), so they can be
stacked in any order.  They run where the method runs: in a ``TotoServer``
handler, where the session decorators load and create sessions, and in a
worker, where the handler is the :class:`~toto.worker.TotoWorker` and has
no session.  There a session decorator answers a clear error
(``ERROR_SERVER``, saying the method needs a session), where 1.0.12
answered the text of an ``AttributeError``; ``@raw_response`` and
``@jsonp`` do the same, and ``@error_redirect`` lets the error through.
"""

from __future__ import absolute_import, division, print_function

import json  # noqa: F401 - part of what a method module's star import gets
import logging
from traceback import format_exc

import six
from tornado import gen
from tornado.gen import Return, coroutine  # noqa: F401 - for star imports
from tornado.ioloop import IOLoop
from tornado.options import options

from toto import _webrequest
from toto.exceptions import *  # noqa: F401,F403 - re-exported on purpose
from toto.exceptions import (ERROR_MISSING_PARAMS, ERROR_NOT_AUTHORIZED, ERROR_SERVER,
                             TotoException)
from toto.exceptions import __all__ as _exception_names
from toto.tasks import TaskQueue  # noqa: F401 - for star imports

logger = logging.getLogger('toto.invocation')

#: The attributes a decorator copies from the function it wraps, so that
#: decorators may be applied in any order.
invocation_attributes = ['asynchronous', 'loads_session', '__doc__', '__module__', '__name__',
                         '__repr__']

# What a session decorator's wrapper is marked with (``wrapper.loads_session``), so that the
# server can load the session on the database task queue before the method runs: the
# request's session (header or cookie), or the one named by the ``session_id`` parameter;
# for @anonymous_session it may also create the anonymous session there.
_REQUEST_SESSION = 'request'
_ANONYMOUS_SESSION = 'anonymous'
_PARAMETER_SESSION = 'parameter'


def _loads_session(wrapper, where):
    # Set after _wraps(): the outermost session decorator says where the id comes from.
    wrapper.loads_session = where
    return wrapper

__all__ = list(_exception_names) + [
    'options', 'format_exc', 'coroutine', 'Return', 'engine', 'TaskQueue', 'logging', 'json',
    'invocation_attributes', 'asynchronous', 'anonymous_session', 'authenticated',
    'optionally_authenticated', 'authenticated_with_parameter', 'requires', 'raw_response',
    'jsonp', 'error_redirect', 'default_parameters',
]


def _engine(fn):
    """``tornado.gen.engine`` for Tornado 6, which no longer has it.

    The function runs as a coroutine and returns None, as an ``@engine``
    function did; what it raises is logged, since nobody holds its Future.
    """
    coroutine_fn = coroutine(fn)

    def wrapper(*args, **kwargs):
        future = coroutine_fn(*args, **kwargs)
        IOLoop.current().add_future(future, _log_engine_failure)
    return _wraps(fn, wrapper)


def _log_engine_failure(future):
    error = future.exception()
    if error is not None:
        logger.error('an @engine function failed: %s', error,
                     exc_info=(type(error), error, getattr(error, '__traceback__', None)))


engine = getattr(gen, 'engine', None) or _engine


def _wraps(fn, wrapper, note=None):
    """Give ``wrapper`` what ``fn`` has of :data:`invocation_attributes`.

    ``note`` is appended to the docstring: an application's generated API
    documentation says what each decorator requires.
    """
    for name in invocation_attributes:
        if hasattr(fn, name):
            try:
                setattr(wrapper, name, getattr(fn, name))
            except (AttributeError, TypeError):
                pass  # read-only on this kind of callable
    if note:
        wrapper.__doc__ = '%s\n\n%s' % (fn.__doc__, note) if fn.__doc__ else note
    return wrapper


def _needs(handler, attribute, decorator):
    """Raise a clear error when ``handler`` cannot do what ``decorator`` needs.

    A worker runs the same method modules as a web server, but has no
    session and sends no raw HTTP answers.
    """
    if not hasattr(handler, attribute):
        raise TotoException(ERROR_SERVER, '%s needs a TotoServer request (with %s); '
                                          'this method ran on a %s' % (
                                              decorator, attribute, type(handler).__name__))


def asynchronous(fn):
    """Mark a method whose answer comes later, from ``handler.respond``.

    In a server, the request stays open after ``invoke`` returns until the
    method calls ``handler.respond(result)``.  In a worker the call is
    acknowledged (the caller receives ``None``) before the method runs.
    """
    fn.asynchronous = True
    return fn


def anonymous_session(fn):
    """Load the request's session, or create an anonymous one when there is none."""
    def wrapper(handler, parameters):
        _needs(handler, 'retrieve_session', '@anonymous_session')
        handler.retrieve_session()
        if not handler.session:
            handler.create_session()
        return fn(handler, parameters)
    return _loads_session(_wraps(fn, wrapper,
                                 '*Uses the caller\'s session, or an anonymous one.*'),
                          _ANONYMOUS_SESSION)


def authenticated(fn):
    """Answer ``ERROR_NOT_AUTHORIZED`` unless the request has a logged-in session."""
    def wrapper(handler, parameters):
        _needs(handler, 'retrieve_session', '@authenticated')
        handler.retrieve_session()
        if not handler.session or not handler.session.user_id:
            raise TotoException(ERROR_NOT_AUTHORIZED, 'Not authorized')
        return fn(handler, parameters)
    return _loads_session(_wraps(fn, wrapper, '*Needs a logged-in session.*'),
                          _REQUEST_SESSION)


def optionally_authenticated(fn):
    """Load the request's session if it has one; run the method either way."""
    def wrapper(handler, parameters):
        _needs(handler, 'retrieve_session', '@optionally_authenticated')
        handler.retrieve_session()
        return fn(handler, parameters)
    return _loads_session(_wraps(fn, wrapper), _REQUEST_SESSION)


def authenticated_with_parameter(fn):
    """Like :func:`authenticated`, with the session id in the ``session_id`` parameter.

    The parameter is taken out of ``parameters`` before the method runs.  As
    in 1.0.12, an anonymous session passes.
    """
    def wrapper(handler, parameters):
        _needs(handler, 'retrieve_session', '@authenticated_with_parameter')
        if 'session_id' in parameters:
            handler.retrieve_session(parameters['session_id'])
            del parameters['session_id']
        if not handler.session:
            raise TotoException(ERROR_NOT_AUTHORIZED, 'Not authorized')
        return fn(handler, parameters)
    return _loads_session(_wraps(fn, wrapper, '*Needs the session id in the parameter* '
                                              '``session_id``.'), _PARAMETER_SESSION)


def requires(*names):
    """Answer ``ERROR_MISSING_PARAMS`` when any of ``names`` is not a parameter::

        @requires('user_id', 'password')
        def invoke(handler, parameters):
            ...

    The answer lists the missing names in the order 1.0.12 gave them on
    Python 2 (the iteration order of a Python 2 ``set``), on every Python.
    """
    def decorator(fn):
        def wrapper(handler, parameters):
            # The Python 2 order is rebuilt only for an answer that needs it,
            # not on every call that has its parameters.
            if any(name not in parameters for name in names):
                missing = _python2_set_order(names, parameters)
                raise TotoException(ERROR_MISSING_PARAMS,
                                    'Missing parameters: ' + ', '.join(missing))
            return fn(handler, parameters)
        return _wraps(fn, wrapper, '*Required parameters:* %s.' % ', '.join(
            '``%s``' % name for name in names))
    return decorator


def raw_response(fn):
    """Send what the method returns as the response body, unencoded.

    The Content-Type is ``handler.response_type``, set to
    ``application/octet-stream`` before the method runs so that it may
    choose another.
    """
    def wrapper(handler, parameters):
        _needs(handler, 'respond_raw', '@raw_response')
        handler.response_type = 'application/octet-stream'
        handler.respond_raw(fn(handler, parameters), handler.response_type)
    return _wraps(fn, wrapper)


def jsonp(callback_name='jsonp'):
    """Answer ``<callback>(<json>)`` as ``text/javascript`` when the request names a callback.

    Use it bare (the parameter is ``jsonp``) or with the parameter's name::

        @jsonp('callback')
        def invoke(handler, parameters):
            ...

    A request without the parameter gets the usual answer.  The callback
    must be a JavaScript name or a path of names (``cb``, ``app.done``,
    ``handlers[2]``): anything else is refused with HTTP 400 before the
    method runs, where 1.0.12 wrote whatever the client sent into the
    answer (a page that passed untrusted text there ran it).
    """
    def decorator(fn):
        def wrapper(handler, parameters):
            callback = parameters.get(name)
            if not callback:
                return fn(handler, parameters)
            _needs(handler, 'respond_raw', '@jsonp')
            if not _webrequest.valid_jsonp_callback(callback):
                raise _webrequest.bad_request(
                    'Invalid JSONP callback: a JavaScript name is expected')
            del parameters[name]
            handler.respond_raw('%s(%s)' % (callback, json.dumps(fn(handler, parameters))),
                                'text/javascript')
        return _wraps(fn, wrapper, '*Answers JSONP when the parameter* ``%s`` *is given.*'
                      % name)
    if isinstance(callback_name, six.string_types):
        name = callback_name
        return decorator
    name = 'jsonp'
    return decorator(callback_name)


def error_redirect(redirect_map, default=None):
    """Redirect instead of answering an error, by the error's code::

        @error_redirect({'404': '/not_found.html'}, default='/error.html')
        def invoke(handler, parameters):
            ...

    The map's keys are strings; the error's ``code``, then its
    ``status_code``, are looked up, then ``default``.  Without a match the
    error is answered as usual.
    """
    def decorator(fn):
        def wrapper(handler, parameters):
            try:
                return fn(handler, parameters)
            except Exception as error:
                if getattr(options, 'debug', False):
                    logger.error('%s', format_exc())
                target = _redirect_target(error, redirect_map, default)
                if target is None or not hasattr(handler, 'redirect'):
                    raise
                handler.redirect(target)
        return _wraps(fn, wrapper)
    return decorator


def _redirect_target(error, redirect_map, default):
    for attribute in ('code', 'status_code'):
        if hasattr(error, attribute) and str(getattr(error, attribute)) in redirect_map:
            return redirect_map[str(getattr(error, attribute))]
    return default or None


def default_parameters(defaults):
    """Fill in the parameters the request does not have from ``defaults``."""
    def decorator(fn):
        def wrapper(handler, parameters):
            for key in defaults:
                if key not in parameters:
                    parameters[key] = defaults[key]
            return fn(handler, parameters)
        return _wraps(fn, wrapper, '*Default parameters:* %s.' % ', '.join(
            '``%s: %s``' % item for item in defaults.items()))
    return decorator


# -- the order of "Missing parameters" ------------------------------------------------
#
# 1.0.12 lists the missing names in the iteration order of a Python 2 set
# (``set(names).difference(parameters)``), which clients may have matched
# against.  Python 3 randomizes string hashes (and Python 2 can be asked to),
# so that order is rebuilt here from Python 2's string hash without
# randomization and its set table (CPython 2.7, Objects/setobject.c).

_MASK64 = (1 << 64) - 1


def _python2_hash(text):
    """CPython 2.7's hash of a str (or of a unicode string: the same for ASCII)."""
    if not text:
        return 0
    units = [ord(char) for char in text]
    value = (units[0] << 7) & _MASK64
    for unit in units:
        value = ((1000003 * value) & _MASK64) ^ unit
    value ^= len(units)
    if value >= 1 << 63:
        value -= 1 << 64
    return -2 if value == -1 else value


class _Python2Set(object):
    """Where CPython 2.7 puts each string of a set: enough to iterate it in its order."""

    def __init__(self, items):
        self.slots = [None] * 8
        self.fill = 0
        for item in items:
            self.add(item)

    def _slot(self, item, item_hash):
        mask = len(self.slots) - 1
        index = item_hash & mask
        perturb = item_hash & _MASK64
        while self.slots[index & mask] is not None:
            if self.slots[index & mask][0] == item:
                return None
            index = ((index << 2) + index + perturb + 1) & _MASK64
            perturb >>= 5
        return index & mask

    def add(self, item):
        item_hash = _python2_hash(item)
        slot = self._slot(item, item_hash)
        if slot is None:
            return
        self.slots[slot] = (item, item_hash)
        self.fill += 1
        if self.fill * 3 >= len(self.slots) * 2:
            self._resize(self.fill * 2 if self.fill > 50000 else self.fill * 4)

    def _resize(self, minimum):
        size = 8
        while size <= minimum:
            size <<= 1
        entries = [entry for entry in self.slots if entry is not None]
        self.slots = [None] * size
        for item, item_hash in entries:
            self.slots[self._slot(item, item_hash)] = (item, item_hash)

    def __iter__(self):
        return (entry[0] for entry in self.slots if entry is not None)


def _python2_set_order(names, parameters):
    """The names not in ``parameters``, in the order 1.0.12 listed them.

    Rebuilt on Python 2 as well: there, hash randomization (``-R``,
    ``PYTHONHASHSEED``) would change the order of a real set.
    """
    if not all(isinstance(name, six.string_types) for name in names):
        return list(set(names).difference(parameters))
    required = _Python2Set(names)
    return list(_Python2Set([name for name in required if name not in parameters]))
