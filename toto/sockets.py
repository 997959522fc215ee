"""Toto methods over a websocket: TotoSocketHandler.

With ``--use_web_sockets`` a TotoServer serves websockets at ``root +
socket_path`` (``/websocket`` by default; ``/websocket/<session_id>`` opens
the socket in that session).  Each text message calls a method of
``--socket_method_module`` (``--method_module`` when unset), the same kind
of module the HTTP handler calls, with the socket as its handler::

    // in the browser
    var socket = new WebSocket('ws://example.com/websocket/' + sessionId);
    socket.onmessage = function (event) { console.log(JSON.parse(event.data)); };
    socket.send(JSON.stringify({method: 'chat.post', parameters: {text: 'hi'},
                                message_id: 1}));
    // -> {"message_id": 1, "result": "message sent!"}

    # methods/chat/subscribe.py: push every chat message to the socket
    def invoke(handler, parameters):
        def forward(message):
            handler.send_message({'message': message})
        handler.register_event_handler('message', forward, persist=True)

The message format (Toto 1.0.12 defined the request, this package the
replies; 1.0.12 never served websockets, see below):

* a call is a JSON object ``{"method": "a.b", "parameters": {...}}``, with
  ``"message_id"`` (any JSON value) when the client wants the answer.
  ``parameters`` defaults to ``{}``.
* with a ``message_id``, the answer is ``{"message_id": id, "result":
  value}`` (``null`` when the method returned nothing) or ``{"message_id":
  id, "error": {"code": n, "value": "..."}}``, once the method returned,
  its Future resolved, or (``@asynchronous``) it called
  ``handler.respond()``;
* without one, results are not sent (the method talks with
  ``handler.send_message``, as in 1.0.12), but errors are:
  ``{"error": {"code": n, "value": "..."}}``;
* a message that is not a JSON object, a binary message, a missing or
  unknown method, and a call beyond ``max_pending_calls`` unanswered ones
  get such an error answer (codes 1000, 1002, 1001) and the socket stays
  open; a message over ``--socket_max_message_size`` closes it (1009);
* ``handler.send_message(data, message_id=None)`` sends ``data``, or
  ``{"message_id": id, "data": data}``; dicts, lists and numbers as JSON,
  text as it is.  It, ``respond`` and ``register_event_handler`` may be
  called from any thread.

Toto 1.0.12 defined this handler but its server crashed (NameError) when
websockets were enabled, and the handler itself could not open a session
(``retrieve_session`` got three arguments) or log an error; its replies
were only what methods sent.
"""

from __future__ import absolute_import, division, print_function

import functools
import importlib
import json
import logging
import threading
import uuid

import six
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.options import options
from tornado.websocket import WebSocketClosedError, WebSocketHandler

import toto._server_options  # noqa: F401 - defines the socket options
from toto._eventwire import split_names
from toto._methods import error_info, find_method, is_awaitable
from toto._security import shortened
from toto.exceptions import (ERROR_INVALID_METHOD, ERROR_MISSING_METHOD, ERROR_SERVER,
                             TotoException)

logger = logging.getLogger('toto.sockets')

_SESSION_HEADER = 'x-toto-session-id'


class TotoSocketHandler(WebSocketHandler):
    """A websocket whose messages call Toto methods (see the module's documentation).

    Methods get, as their handler, an object that forwards to this socket
    and answers their call: ``respond(result=None, error=None)``,
    ``respond_raw(body)``, ``message_id``, ``transaction_id``, and
    everything of the socket: ``session``, ``db_connection``, ``db``,
    ``retrieve_session()``, ``create_session()``, ``send_message()``,
    ``register_event_handler()``, ``close()``.
    """

    #: The package of the methods messages call (set by :meth:`configure`).
    method_module = None
    #: Unanswered calls one socket may have; calls past it are refused.
    max_pending_calls = 100
    debug = False
    allowed_origins = ()
    _on_open = None
    _on_close = None

    @classmethod
    def configure(cls):
        """Read the options: the method package, the open and close hooks, origins, debug."""
        name = options.socket_method_module or options.method_module
        cls.method_module = importlib.import_module(name) if name else None
        # Kept as plain functions: they get the socket as their one argument.
        cls._on_open = _static(_hook(options.socket_opened_method))
        cls._on_close = _static(_hook(options.socket_closed_method))
        cls.debug = bool(options.debug)
        cls.allowed_origins = tuple(split_names(options.socket_allowed_origins))

    def initialize(self, db_connection=None):
        self.db_connection = db_connection
        self.db = getattr(db_connection, 'db', None)
        self.session = None
        #: Signatures of the event handlers this socket registered.
        self.registered_event_handlers = []
        self.session_id = None
        self._pending = 0
        self._io_loop = None
        self._loop_thread = None
        # Stands for this socket with the event manager, which skips the
        # handlers of a finished one (the socket itself reads as finished
        # once its handshake is done).
        self._event_owner = _EventOwner()

    # -- the connection ----------------------------------------------------------

    def check_origin(self, origin):
        if '*' in self.allowed_origins or origin in self.allowed_origins:
            return True
        return super(TotoSocketHandler, self).check_origin(origin)

    def open(self, session_id=None):
        """Opened: take the session (from the URL, else the session header), call the hook."""
        self._io_loop = IOLoop.current()
        self._loop_thread = threading.current_thread()
        self.session_id = session_id or self.request.headers.get(_SESSION_HEADER) or None
        if self.session_id:
            try:
                self.retrieve_session()
            except Exception as error:
                self.log_error(error)
        self._call_hook(self._on_open, 'socket_opened_method')

    def on_close(self):
        self._event_owner._finished = True
        from toto.events import EventManager
        manager = EventManager.instance()
        for signature in self.registered_event_handlers:
            manager.remove_handler(signature)
        del self.registered_event_handlers[:]
        self._call_hook(self._on_close, 'socket_closed_method')

    def _call_hook(self, hook, option):
        if hook is None:
            return
        try:
            hook(self)
        except Exception:
            logger.exception('%s %s failed', option, getattr(options, option))

    # -- sessions ----------------------------------------------------------------

    def retrieve_session(self, session_id=None):
        """Load the session ``session_id`` (default: the socket's); returns it or None."""
        if session_id is None:
            session_id = self.session_id
        if not session_id or self.db_connection is None:
            return self.session
        self.session = self.db_connection.retrieve_session(session_id)
        if self.session is not None:
            self.session_id = self.session.session_id
        return self.session

    def create_session(self, user_id=None, password=None, verify_password=True):
        """Start a session (anonymous without ``user_id``); later calls run in it."""
        self.session = self.db_connection.create_session(user_id, password,
                                                         verify_password=verify_password)
        self.session_id = self.session.session_id
        return self.session

    # -- messages ----------------------------------------------------------------

    def on_message(self, message):
        try:
            self._on_call(message)
        except Exception as error:
            # Whatever went wrong, the socket goes on taking messages.
            logger.exception('a websocket message failed')
            self._refuse(None, ERROR_SERVER, 'Invalid message: %s' % shortened(str(error)))

    def _on_call(self, message):
        # Text arrives as text; a binary message as bytes (str on Python 2).
        if isinstance(message, bytes):
            self._refuse(None, ERROR_SERVER, 'Invalid message: binary messages are not '
                                             'calls; send JSON text')
            return
        try:
            call = json.loads(message)
        except (ValueError, RuntimeError) as error:  # RuntimeError: nested too deep
            self._refuse(None, ERROR_SERVER, 'Invalid message: not JSON (%s)'
                         % shortened(str(error)))
            return
        if not isinstance(call, dict):
            self._refuse(None, ERROR_SERVER, 'Invalid message: a call is a JSON object '
                                             '{"method": ..., "parameters": ...}')
            return
        message_id = call.get('message_id')
        method_name = call.get('method')
        if not method_name:
            self._refuse(message_id, ERROR_MISSING_METHOD, 'Missing method.')
            return
        if self._pending >= self.max_pending_calls:
            self._refuse(message_id, ERROR_SERVER, 'Too many calls in progress on this '
                         'socket (%d); wait for their answers' % self.max_pending_calls)
            return
        try:
            method = find_method(self.method_module, method_name)
        except AttributeError:
            if not isinstance(method_name, six.string_types):
                method_name = json.dumps(method_name)
            self._refuse(message_id, ERROR_INVALID_METHOD,
                         "Cannot call '%s'." % shortened(method_name))
            return
        except Exception as error:  # a method module that does not import, say
            SocketCall(self, message_id).respond(error=error)
            return
        self._invoke(method, call.get('parameters', {}), message_id)

    def _invoke(self, method, parameters, message_id):
        call = SocketCall(self, message_id)
        try:
            result = method.invoke(call, parameters)
        except Exception as error:
            call.respond(error=error)
            return
        if is_awaitable(result):
            self._pending += 1
            self._io_loop.add_future(gen.convert_yielded(result),
                                     functools.partial(self._coroutine_done, call))
        elif hasattr(method.invoke, 'asynchronous'):
            if not call.answered:
                self._pending += 1
                call.on_answer = self._call_done
        else:
            call.respond(result=result)

    def _coroutine_done(self, call, future):
        self._call_done()
        try:
            result = future.result()
        except Exception as error:
            call.respond(error=error)
            return
        call.respond(result=result)

    def _call_done(self):
        self._pending -= 1

    def _refuse(self, message_id, code, value):
        error = {'code': code, 'value': value}
        # Rate-limited: a client may send nothing else.
        error_info(TotoException(code, value), self.debug)
        self._send(_answer(message_id, error=error))

    # -- sending -----------------------------------------------------------------

    def send_message(self, data, message_id=None):
        """Send ``data`` (or ``{"message_id", "data"}``); from any thread.

        Returns whether it was sent (False once the socket is closed; off the
        loop's thread, True once handed to the loop).
        """
        if message_id is not None:
            data = {'message_id': message_id, 'data': data}
        return self._send(data)

    def _send(self, data, binary=False):
        if not self._on_loop_thread():
            self._io_loop.add_callback(self._send, data, binary)
            return True
        if not isinstance(data, (six.text_type, bytes)):
            data = json.dumps(data)
        try:
            self.write_message(data, binary=binary)
        except WebSocketClosedError:
            logger.debug('websocket closed: message not sent')
            return False
        return True

    def _on_loop_thread(self):
        return self._loop_thread is None or threading.current_thread() is self._loop_thread

    def log_error(self, error):
        """Log ``error`` as Toto errors are logged (rate-limited; tracebacks with --debug)."""
        error_info(error, self.debug)

    # -- events ------------------------------------------------------------------

    def register_event_handler(self, event_name, handler, run_on_main_loop=True,
                               deregister_on_finish=False, persist=False):
        """Call ``handler(args)`` when the event ``event_name`` arrives while the socket is open.

        Once, unless ``persist`` (not in 1.0.12); removed when the socket
        closes (``deregister_on_finish`` is accepted for 1.0.12's calls: a
        socket's handlers are always removed).  Returns the signature
        :meth:`deregister_event_handler` takes.
        """
        from toto.events import EventManager
        signature = EventManager.instance().register_handler(
            event_name, handler, run_on_main_loop, self._event_owner, persist)
        self.registered_event_handlers.append(signature)
        return signature

    def deregister_event_handler(self, sig):
        from toto.events import EventManager
        EventManager.instance().remove_handler(sig)
        if sig in self.registered_event_handlers:
            self.registered_event_handlers.remove(sig)


class SocketCall(object):
    """What a method called over a websocket gets as its handler: one call of one socket.

    It answers the call (:meth:`respond`, :meth:`respond_raw`) and passes
    every other attribute, read or set, to the socket.
    """

    _OWN = frozenset(['socket', 'message_id', 'transaction_id', 'answered', 'on_answer',
                      'async', 'response_type'])

    def __init__(self, socket, message_id):
        own = object.__setattr__
        own(self, 'socket', socket)
        own(self, 'message_id', message_id)
        own(self, 'transaction_id', uuid.uuid4())
        own(self, 'answered', False)
        own(self, 'on_answer', None)
        own(self, 'async', False)
        own(self, 'response_type', 'application/json')

    def __getattr__(self, name):
        return getattr(self.socket, name)

    def __setattr__(self, name, value):
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.socket, name, value)

    def respond(self, result=None, error=None, allow_async=True):
        """Answer the call, from any thread (see the module's documentation for the format)."""
        if not self.socket._on_loop_thread():
            self.socket._io_loop.add_callback(self.respond, result, error)
            return
        if not self._answering():
            return
        if error:
            if not isinstance(error, dict):
                error = error_info(error, self.socket.debug)
            self.socket._send(_answer(self.message_id, error=error))
        elif self.message_id is not None:
            self.socket._send(_answer(self.message_id, result=result))

    def respond_raw(self, body, content_type=None, finish=True):
        """Answer with ``body`` as a message of its own (bytes: a binary message)."""
        if not self.socket._on_loop_thread():
            self.socket._io_loop.add_callback(self.respond_raw, body, content_type, finish)
            return
        if not self._answering():
            return
        if not isinstance(body, (six.text_type, bytes)):
            body = str(body)
        # Bytes go as a binary message; on Python 2, where text is often
        # str, only unicode is told apart: str goes as text, as in 1.0.12.
        self.socket._send(body, binary=six.PY3 and isinstance(body, bytes))

    def _answering(self):
        if self.answered:
            logger.warning('a call over a websocket was answered twice; the second answer '
                           'is dropped')
            return False
        self.answered = True
        if self.on_answer is not None:
            self.on_answer()
        return True


def _answer(message_id, result=None, error=None):
    answer = {}
    if message_id is not None:
        answer['message_id'] = message_id
    if error is not None:
        answer['error'] = error
    else:
        answer['result'] = result
    return answer


class _EventOwner(object):
    """Stands for a socket with the event manager: finished once the socket is closed."""

    __slots__ = ('_finished',)

    def __init__(self):
        self._finished = False


def _static(function):
    return None if function is None else staticmethod(function)


def _hook(path):
    """The function ``module.function`` names, or None."""
    if not path:
        return None
    module_name, _, name = path.rpartition('.')
    if not module_name:
        raise ValueError('a socket hook is module.function, not %r' % (path,))
    return getattr(importlib.import_module(module_name), name)


__all__ = ['TotoSocketHandler', 'SocketCall']
