"""The HTTP face of a Toto server: one request, one method call (or a batch of them).

:class:`TotoHandler` is the ``tornado.web.RequestHandler`` a
:class:`~toto.server.TotoServer` routes every request under ``--root`` to.
It finds the method the request names (in the URL path or the body's
``method``), calls ``invoke(handler, parameters)`` of that method module
under ``--method_module``, and answers ``{"result": ...}`` or
``{"error": {"code": ..., "value": ...}}`` with the request's ``session``;
that is Toto 1.0.12's protocol, byte for byte where clients could tell.
Apps use it directly only for its hooks::

    from toto.handler import TotoHandler

    def before(handler, transaction_id, method_name):
        handler.started = time.time()

    TotoHandler.set_before_handler(before)

or to serve it themselves::

    TotoHandler.configure()                   # reads the options, once
    app = tornado.web.Application([(r'/api/?([^/]?[\\w\\./]*)', TotoHandler,
                                    {'db_connection': configured_connection()})])

A method answers by returning a value (or a Future), or, when decorated
with ``@asynchronous``, by calling ``handler.respond(result)`` later, from
any thread. How the body is read is in :mod:`toto._webrequest`, how the
answer is written in :mod:`toto._webresponse`, sessions in
:mod:`toto._websession` and batches in :mod:`toto._webbatch`.
"""

from __future__ import absolute_import, division, print_function

import logging
import time
import traceback
from uuid import uuid4

import six
from six.moves import _thread
from tornado import gen
from tornado.concurrent import Future, future_set_result_unless_cancelled
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, stream_request_body

from toto import _methods, _webbatch, _webdatabase, _webrequest, _webresponse, _websession
from toto._dboffload import run_blocking
from toto._methods import find_method, is_awaitable
from toto._security import shortened
from toto._webbatch import BatchHandlerProxy
from toto._webrequest import RequestError
from toto._websettings import HandlerSettings
from toto.exceptions import ERROR_INVALID_METHOD, ERROR_SERVER, TotoException
from toto.session import TotoSession

__all__ = ['TotoHandler', 'BatchHandlerProxy']

logger = logging.getLogger('toto.handler')

# Lookups of names that resolve are remembered; a server has far fewer methods.
_MAX_CACHED_METHODS = 10000


@stream_request_body
class TotoHandler(RequestHandler):
    """Answers Toto requests: see the module docstring.

    Attributes a method may use: ``db_connection`` and ``db`` (its ``.db``),
    ``session`` (after ``retrieve_session()`` or ``create_session()``),
    ``body`` (the decoded request body), ``response_type``, ``headers_only``
    (a HEAD request), ``transaction_id`` (a ``uuid.UUID``), ``bson`` and
    ``msgpack`` (the modules, when enabled, else False),
    ``registered_event_handlers`` and ``async`` (``getattr(handler, 'async')``
    on Python 3): true once an ``@asynchronous`` method has returned.
    """

    SUPPORTED_METHODS = set(['POST', 'OPTIONS', 'GET', 'HEAD'])
    #: The Access-Control-Allow-Origin value, from ``--allow_origin`` (set by :meth:`configure`).
    ACCESS_CONTROL_ALLOW_ORIGIN = '*'

    _settings = None
    _method_cache = {}
    _method_name = staticmethod(_webrequest.method_name_both)

    @classmethod
    def configure(cls):
        """Read the options the handler needs; call it again after they change.

        Imports ``--method_module``, picks the ``--method_select`` rule, and
        sets ``event_manager`` (the :class:`~toto.events.EventManager` class)
        unless ``--event_mode=off``. Returns the settings it built.
        """
        settings = HandlerSettings.from_options()
        cls._settings = settings
        cls._method_cache = {}
        cls._method_name = staticmethod(_webrequest.METHOD_NAME_RULES.get(
            settings.method_select, _webrequest.method_name_both))
        cls.ACCESS_CONTROL_ALLOW_ORIGIN = settings.allow_origin
        if settings.event_mode != 'off':
            from toto.events import EventManager
            cls.event_manager = EventManager
        elif 'event_manager' in cls.__dict__:
            del cls.event_manager
        return settings

    def initialize(self, db_connection):
        settings = self._settings or type(self).configure()
        self.db_connection = db_connection
        self.db = getattr(db_connection, 'db', None)
        self.bson = settings.bson or False
        self.msgpack = settings.msgpack or False
        self.response_type = 'application/json'
        self.body = None
        self.session = None
        self.registered_event_handlers = []
        self.headers_only = False
        self.__dict__['async'] = False
        self._active_methods = []
        # respond() may come from any thread: it runs on this loop.
        self._io_loop = IOLoop.current()
        self._loop_thread = _thread.get_ident()
        self._answer = None      # a Future while the request waits for respond()
        self._responded = False
        self._chunks = []
        self._body_size = 0
        # Sessions loaded on the database queue before the method ran: {session id:
        # session or None}, so that retrieve_session() finds them (None: looked up, none).
        self._prefetched = None

    @property
    def transaction_id(self):
        """A ``uuid.UUID`` naming this request for the hooks (made when first read)."""
        transaction_id = self.__dict__.get('_transaction_id')
        if transaction_id is None:
            transaction_id = self.__dict__['_transaction_id'] = uuid4()
        return transaction_id

    @transaction_id.setter
    def transaction_id(self, value):
        self.__dict__['_transaction_id'] = value

    # -- the request body (streamed, so that a body over the limit gets a clean 413) ----

    def prepare(self):
        length = self.request.headers.get('Content-Length')
        if length is not None:
            try:
                too_long = int(length) > self._settings.max_body_size
            except ValueError:
                return  # tornado answers the malformed header itself
            if too_long:
                self._refuse_body()

    def data_received(self, chunk):
        if self._finished:
            return
        self._body_size += len(chunk)
        if self._body_size > self._settings.max_body_size:
            self._refuse_body()
            return
        self._chunks.append(chunk)

    def _refuse_body(self):
        self._answer_refusal(_webrequest.bad_request(
            'The request body is larger than %d bytes' % self._settings.max_body_size,
            _webrequest.BodyTooLarge))

    def _take_body(self):
        """Put the body together as ``request.body``; False if it was refused."""
        chunks = self._chunks
        self.request.body = chunks[0] if len(chunks) == 1 else b''.join(chunks)
        self._chunks = None
        # Tornado calls the verb even when data_received() refused the body.
        return not self._finished

    # -- verbs -----------------------------------------------------------------------

    def options(self, path=None):
        headers = self.request.headers
        self.add_header('Access-Control-Allow-Headers', _webresponse.allowed_headers(
            self._settings, headers.get('Access-Control-Request-Headers')))
        method = headers.get('Access-Control-Request-Method')
        if method is not None and method not in self.SUPPORTED_METHODS:
            raise HTTPError(405, 'Method not supported')
        _webresponse.add_origin_header(self, self._settings)
        self.add_header('Access-Control-Allow-Methods', _webresponse.ALLOWED_METHODS)
        self.add_header('Access-Control-Expose-Headers', _websession.HMAC_HEADER)

    def head(self, path=None):
        self.headers_only = True
        # Returned, so tornado waits for an asynchronous method (1.0.12 did not).
        return self.get(path)

    def get(self, path=None):
        if not self._take_body():
            return None
        try:
            parameters = _webrequest.query_parameters(self.request.arguments)
        except RequestError as error:
            return self._answer_refusal(error)
        return self._process(path, None, parameters)

    def post(self, path=None):
        if not self._take_body():
            return None
        content_type = self.request.headers.get('Content-Type') or 'application/json'
        try:
            body, self.response_type = _webrequest.decode_body(
                self.request.body, content_type, self.request, self._settings)
        except RequestError as error:
            return self._answer_refusal(error)
        self.body = body
        if isinstance(body, dict) and 'batch' in body:
            return self._after(_webbatch.run_batch(self, body['batch']))
        return self._process(path, body, _webrequest.body_parameters(body))

    # -- calling the method ----------------------------------------------------------

    def _process(self, path, body, parameters):
        self.session = None
        self._add_cors_headers()
        outcome = self._call(path, body, parameters, self)
        if outcome.__class__ is not tuple:
            return self._after(self._complete_later(outcome))
        result, error, asynchronous = outcome
        if not asynchronous and (result is not None or error):
            # The common case, without the steps an asynchronous method needs.
            self.respond(result, error, allow_async=False)
            self._run_after_hook()
            return None
        return self._complete(result, error, asynchronous)

    def _call(self, path, body, parameters, target):
        """Run the method for ``target`` (the handler or a batch proxy).

        Returns ``(result, error, asynchronous)``, or a Future of it when the
        method returned one.
        """
        start = time.time() if logger.isEnabledFor(logging.DEBUG) else None
        asynchronous = False
        try:
            name = self._method_name(path, body)
            method = self._find_method(name)
            invoke = method.invoke
            asynchronous = hasattr(invoke, 'asynchronous')
            if type(self)._before_invoke is not _no_before_hook:
                self._before_invoke(target.transaction_id, name)
            self._active_methods.append(method)
            first = self._database_work_first(invoke, parameters)
            if first is not None:
                return self._prefetched_call(first, invoke, parameters, name, start,
                                             asynchronous, target)
            output = invoke(target, parameters)
        except Exception as error:
            return None, self._error_answer(error, target), asynchronous
        return self._outcome(output, name, start, asynchronous, target)

    def _outcome(self, output, name, start, asynchronous, target):
        if type(output) not in _PLAIN_TYPES and is_awaitable(output):
            return self._awaited(output, name, start, asynchronous, target)
        if start is not None:
            _log_call(name, start)
        return output, None, asynchronous

    def _database_work_first(self, invoke, parameters):
        """``(session id to load or None, create an anonymous session if none)`` when the
        session decorator of ``invoke`` needs the database and its work should run on the
        database queue first; else None. Only for drivers that block: the json and none
        drivers keep loading sessions in the decorator."""
        if (getattr(invoke, 'loads_session', None) is None
                or not _webdatabase.session_work_blocks(self.db_connection)):
            return None
        session_id, anonymous = _webdatabase.prefetch_session_id(self, invoke, parameters,
                                                                 self._settings)
        if session_id is not None and self._prefetched and session_id in self._prefetched:
            if self._prefetched[session_id] or not anonymous:
                return None
            session_id = None  # looked up, none: only the anonymous session is still needed
        if session_id is None and not anonymous:
            return None
        return session_id, anonymous

    @gen.coroutine
    def _prefetched_call(self, first, invoke, parameters, name, start, asynchronous, target):
        """Do the session decorator's database work on the database queue (load the session,
        create the anonymous one), then call the method: the decorator finds it done."""
        session_id, anonymous = first
        try:
            session = None
            if session_id is not None:
                session = yield self.run_database(self.db_connection.retrieve_session,
                                                  session_id)
                if self._prefetched is None:
                    self._prefetched = {}
                self._prefetched[session_id] = session
            if anonymous and not session and not self.session:
                # What @anonymous_session does next when there is no session.
                yield self.create_session_later()
            output = invoke(target, parameters)
        except Exception as error:
            raise gen.Return((None, self._error_answer(error, target), asynchronous))
        outcome = self._outcome(output, name, start, asynchronous, target)
        if outcome.__class__ is not tuple:
            outcome = yield outcome
        raise gen.Return(outcome)

    @gen.coroutine
    def _awaited(self, output, name, start, asynchronous, target):
        try:
            result = yield output
        except Exception as error:
            raise gen.Return((None, self._error_answer(error, target), asynchronous))
        if start is not None:
            _log_call(name, start)
        raise gen.Return((result, None, asynchronous))

    @gen.coroutine
    def _complete_later(self, outcome):
        result, error, asynchronous = yield outcome
        yield self._complete_outcome(result, error, asynchronous)

    def _complete(self, result, error, asynchronous):
        waiting = self._complete_outcome(result, error, asynchronous)
        if waiting is not None:
            return self._after(waiting)
        self._run_after_hook()
        return None

    def _complete_outcome(self, result, error, asynchronous):
        # 1.0.12's rule: answer a value that is not None, or an error, now; an
        # asynchronous method with nothing to say answers later with respond().
        if asynchronous:
            self.__dict__['async'] = True
        if result is not None or error:
            self.respond(result, error, allow_async=False)
        elif asynchronous:
            return self._answered()
        return None

    def _answered(self):
        """A Future resolved once the answer is written (at once if it has been)."""
        if self._answer is None:
            self._answer = Future()
            if self._responded or self._finished:
                self._answer.set_result(None)
        return self._answer

    def _release(self):
        """End the wait of :meth:`_answered` (once the answer is written or cannot be)."""
        if self._answer is not None and not self._answer.done():
            future_set_result_unless_cancelled(self._answer, None)

    @gen.coroutine
    def _after(self, waiting):
        yield waiting
        self._run_after_hook()

    def _run_after_hook(self, transaction_id=None):
        # The answer is written: a failing hook is logged, not turned into an error page.
        if type(self)._after_invoke is _no_after_hook:
            return
        try:
            self._after_invoke(transaction_id or self.transaction_id)
        except Exception:
            logger.exception('the after handler failed')

    def _find_method(self, name):
        method = self._method_cache.get(name) if isinstance(name, six.string_types) else None
        if method is not None:
            return method
        root = self._settings.method_root
        try:
            if root is None:
                raise AttributeError('no --method_module')
            method = find_method(root, name)
        except AttributeError:
            raise TotoException(ERROR_INVALID_METHOD, "Cannot call '%s'." % (
                shortened(name, 200) if isinstance(name, six.string_types) else name,))
        if not hasattr(method, 'invoke'):
            # What 1.0.12 answered (Python 2's text of the AttributeError).
            raise TotoException(ERROR_SERVER, "'%s' object has no attribute 'invoke'"
                                % type(method).__name__)
        if isinstance(name, six.string_types) and len(self._method_cache) < _MAX_CACHED_METHODS:
            self._method_cache[name] = method
        return method

    def _error_answer(self, error, target):
        if isinstance(error, RequestError) and target is self and not self._finished:
            self.set_status(error.status_code)
        return self.error_info(error)

    def error_info(self, e):
        """The ``{"code", "value"}`` answer for the exception ``e``, which is logged.

        Any exception that is not a :class:`~toto.exceptions.TotoException`
        becomes ``ERROR_SERVER`` with ``str(e)``. With ``--debug`` the
        traceback is logged too (1.0.12 also logged the request headers,
        session ids included; they are left out).
        """
        return _methods.error_info(e, debug=self._settings.debug)

    # -- answering -------------------------------------------------------------------

    def respond(self, result=None, error=None, batch_results=None, allow_async=True):
        """Answer the request with ``result`` or ``error``, and the session; from any thread.

        ``error`` may be an exception (answered as :meth:`error_info` says)
        or a ``{"code", "value"}`` dict. The answer is encoded as the
        request's ``response_type`` (JSON, or BSON / MessagePack when the
        request was) and signed in ``x-toto-hmac`` with ``--hmac_enabled``.
        ``batch_results`` and ``allow_async`` are for the handler's own use.
        """
        if (_thread.get_ident() != self._loop_thread
                or (allow_async and self.__dict__.get('async'))):
            self._io_loop.add_callback(self.respond, result, error, batch_results, False)
            return
        if self._responded or self._finished:
            logger.warning('%s answered twice (or after the connection closed); '
                           'the later answer is dropped', self.request.path[:200])
            return
        if error:
            error = error if isinstance(error, dict) else self.error_info(error)
        document = _webresponse.response_document(result, error, batch_results, self.session)
        body = _webresponse.encode(document, self.response_type, self._settings)
        if self._settings.hmac_enabled and self.session:
            self.add_header('X-Toto-Hmac', self._response_hmac(self.session, body))
        self.respond_raw(body, self.response_type)

    def respond_raw(self, body, content_type, finish=True):
        """Write ``body`` as it is with the Content-Type ``content_type``; from any thread.

        With ``finish=False`` more writes may follow; the request is answered
        once a call has ``finish=True``. The Content-Type is added after
        tornado's default (``text/html``), so answers carry two, as 1.0.12's
        did (``--single_content_type`` sends one).
        """
        if _thread.get_ident() != self._loop_thread:
            self._io_loop.add_callback(self.respond_raw, body, content_type, finish)
            return
        if self._finished:
            logger.warning('%s: respond_raw() after the request finished; dropped',
                           self.request.path[:200])
            return
        if self._settings.single_content_type:
            self.set_header('Content-Type', content_type)
        elif content_type in _KNOWN_TYPES:
            self._headers.add('Content-Type', content_type)  # no need for tornado's checks
        else:
            self.add_header('Content-Type', content_type)
        if not self.headers_only:
            self.write(body)
        if finish:
            self._responded = True
            self._release()

    def _answer_refusal(self, error):
        """Answer a :class:`RequestError` now: its status and a Toto error body."""
        self.session = None
        self.set_status(error.status_code)
        self._add_cors_headers()
        self.respond(error={'code': error.code, 'value': error.value}, allow_async=False)
        self.finish()

    def _add_cors_headers(self):
        _webresponse.add_cors_headers(self, self._settings)

    def write_error(self, status_code, **kwargs):
        """Tornado's error page, with a traceback only under ``--serve_tracebacks``."""
        exc_info = kwargs.pop('exc_info', None)
        if exc_info and self._settings is not None and self._settings.serve_tracebacks:
            self.set_header('Content-Type', 'text/plain; charset=UTF-8')
            self.finish(''.join(traceback.format_exception(*exc_info)))
            return
        RequestHandler.write_error(self, status_code, **kwargs)

    # -- sessions --------------------------------------------------------------------

    def create_session(self, user_id=None, password=None, verify_password=True):
        """Start a session (anonymous without ``user_id``); it becomes ``self.session``.

        With ``--hmac_enabled`` the session gets a new HMAC key (``session.key``),
        which the login method gives the client. With ``--use_cookies`` the
        session's cookie is sent too.
        """
        session = self.db_connection.create_session(user_id, password, verify_password,
                                                    key=self._new_session_key())
        return self._session_created(session)

    @gen.coroutine
    def create_session_later(self, user_id=None, password=None, verify_password=True):
        """:meth:`create_session`, with the database work on the database task queue.

        A Future of the session. With a driver that does not block (json, none) the work is
        done at once, as :meth:`create_session` does it. Call it on the IOLoop's thread.
        """
        key = self._new_session_key()
        session = yield self.run_database(self.db_connection.create_session, user_id, password,
                                          verify_password, key=key)
        raise gen.Return(self._session_created(session))

    def _new_session_key(self):
        return self._settings.hmac_enabled and TotoSession.generate_id()

    def _session_created(self, session):
        self.session = session
        if self._settings.use_cookies:
            _websession.set_session_cookie(self, session, self._settings)
        return session

    def database_blocks(self):
        """True when the database work of ``db_connection`` blocks (``blocking = True`` on
        the driver: mongodb, redis, mysql, postgres), so it belongs on the database queue."""
        return _webdatabase.account_work_blocks(self.db_connection)

    @gen.coroutine
    def run_database(self, function, *args, **kwargs):
        """A Future of ``function(*args, **kwargs)``, run on the database task queue.

        For the framework's own database work (sessions, accounts): within
        ``--database_timeout`` seconds, else ``ERROR_SERVER`` "database <name> unavailable:
        ...". With a driver that does not block the call runs at once, on the IOLoop.
        """
        if not self.database_blocks():
            raise gen.Return(function(*args, **kwargs))
        result = yield run_blocking(_webdatabase.database_name(self.db_connection), function,
                                    *args, **kwargs)
        raise gen.Return(result)

    def retrieve_session(self, session_id=None):
        """Load the request's session (or the session ``session_id``) into ``self.session``.

        The id comes from the ``x-toto-session-id`` header, else (with
        ``--use_cookies``) from the session cookie, refused when another site
        sent the request. With ``--hmac_enabled`` the request's
        ``x-toto-hmac`` is checked (``ERROR_INVALID_HMAC``). Returns the
        session, or None when there is none.
        """
        settings = self._settings
        if not self.session or (session_id and self.session.session_id != session_id):
            headers = self.request.headers
            if not session_id:
                session_id, from_cookie = _websession.requested_session_id(self, settings)
                if from_cookie:
                    _websession.refuse_cross_site(self.request, settings)
            if session_id:
                prefetched = self._prefetched
                if (prefetched and isinstance(session_id, six.string_types)
                        and session_id in prefetched):
                    self.session = prefetched[session_id]
                else:
                    self.session = self.db_connection.retrieve_session(session_id)
            if settings.hmac_enabled and self.session:
                self._verify_hmac(self.session, self.request, headers)
        if settings.use_cookies and self.session:
            _websession.set_session_cookie(self, self.session, settings)
        return self.session

    def _verify_hmac(self, session, request, headers):
        session.verify(headers.get(_websession.HMAC_HEADER),
                       _webresponse.request_signature(request))

    def _response_hmac(self, session, response_body):
        return session.hmac(_webresponse.response_signature(session.session_id, response_body))

    # -- events and the end of the request ------------------------------------------

    def register_event_handler(self, event_name, handler, run_on_main_loop=True,
                               deregister_on_finish=False):
        """Call ``handler(args)`` when the event ``event_name`` arrives, while this request lasts.

        Needs ``--event_mode`` on or only. The handler is skipped once the
        request has finished; ``deregister_on_finish`` removes it then.
        Returns the signature :meth:`deregister_event_handler` takes.
        """
        sig = self._event_manager().register_handler(event_name, handler, run_on_main_loop,
                                                     self)
        if deregister_on_finish:
            self.registered_event_handlers.append(sig)
        return sig

    def deregister_event_handler(self, sig):
        """Remove an event handler :meth:`register_event_handler` added."""
        self._event_manager().remove_handler(sig)
        if sig in self.registered_event_handlers:
            self.registered_event_handlers.remove(sig)

    def _event_manager(self):
        manager = getattr(self, 'event_manager', None)
        if manager is None:
            raise AttributeError('event handlers need --event_mode=on (or only); it is off')
        return manager.instance()

    def on_connection_close(self):
        """Call ``on_connection_close(handler)`` of each method module this request called."""
        if self._chunks is not None:
            # The body was still arriving: tornado's own cleanup ends its wait for it.
            RequestHandler.on_connection_close(self)
        for method in self._active_methods:
            hook = getattr(method, 'on_connection_close', None)
            if hook is not None:
                try:
                    hook(self)
                except Exception:
                    logger.exception('on_connection_close of %s failed',
                                     getattr(method, '__name__', method))
        self.on_finish()
        # Nobody can read the answer now: let tornado end the request.
        self._release()

    def on_finish(self):
        while self.registered_event_handlers:
            self.deregister_event_handler(self.registered_event_handlers[0])

    # -- hooks -----------------------------------------------------------------------

    def _before_invoke(self, transaction_id, method):
        pass

    def _after_invoke(self, transaction_id):
        pass

    @classmethod
    def set_before_handler(cls, handler):
        """Call ``handler(handler, transaction_id, method_name)`` before each method.

        A batch also makes one call with the name ``<batch>``.
        """
        cls._before_invoke = handler

    @classmethod
    def set_after_handler(cls, handler):
        """Call ``handler(handler, transaction_id)`` once a request (or batch entry) is answered."""
        cls._after_invoke = handler

    @classmethod
    def set_hmac_handler(cls, handler):
        """Check request HMACs with ``handler(handler, session, request, headers)`` instead.

        It raises (e.g. ``TotoException(ERROR_INVALID_HMAC, ...)``) to refuse.
        """
        cls._verify_hmac = handler

    @classmethod
    def set_response_hmac_handler(cls, handler):
        """Sign answers with ``handler(handler, session, body)``, which returns the header value."""
        cls._response_hmac = handler


def _log_call(name, start):
    # 1.0.12 logged every call at INFO; a line per request costs as much as the
    # rest of a small request, and tornado's access log has the time already.
    logger.debug('call %s %0.4fms', name, (time.time() - start) * 1000.0)

_KNOWN_TYPES = frozenset(['application/json', 'application/bson', 'application/msgpack',
                          'application/octet-stream', 'text/javascript'])
_no_before_hook = TotoHandler.__dict__['_before_invoke']
_no_after_hook = TotoHandler.__dict__['_after_invoke']
# Results that are certainly not awaitable: checked before the slower is_awaitable().
_PLAIN_TYPES = frozenset([dict, list, tuple, str, bytes, six.text_type, int, float, bool,
                          type(None)] + list(six.integer_types))


