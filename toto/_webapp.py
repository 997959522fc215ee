"""The Tornado application of one TotoServer process: routes, settings, and work in hand.

:func:`build_application` makes what 1.0.12's ``TotoServer.main_loop`` made
from the options: the websocket route, the client-side worker route, the
process's event manager and the method route, in that order, in an
:class:`ServerApplication`.  That application also keeps track of the
requests it is answering and the websockets it holds, so that a process can
stop without cutting them off (see :mod:`toto._webserver_stop`)::

    from toto._webapp import build_application

    application = build_application(db_connection, service_id=0, process_count=2)
    server = HTTPServer(application, **server_limits())
    ...
    application.unfinished()   # requests and websockets not done yet

The options are read when it is called: ``root``, ``socket_path``,
``use_web_sockets``, ``client_side_worker_path``, ``event_mode`` (and the
event options of :mod:`toto.events`), ``cookie_secret``, ``autoreload``,
``socket_max_message_size``, ``max_body_size``, ``idle_connection_timeout``
and ``body_timeout``.
"""

from __future__ import absolute_import, division, print_function

import logging
import posixpath
import weakref

from tornado import web
from tornado.options import options

import toto._server_options  # noqa: F401 - defines the options read here
from toto._methods import call_with_accepted

logger = logging.getLogger('toto.server')

# 1.0.12's routes end in this group: the method path of TotoHandler.
_PATH_GROUP = r'/?([^/]?[\w\./]*)'
# The same for the session id of TotoSocketHandler, with '-': session ids
# are urlsafe base64 (1.0.12's route missed the ids holding a '-').
_SESSION_GROUP = r'/?([^/]?[\w\./-]*)'

_EVENT_MODES = ('off', 'on', 'only')


def check_options():
    """Raise ValueError, with the reason, for server options that cannot work."""
    if options.event_mode not in _EVENT_MODES:
        raise ValueError("event_mode is 'off', 'on' or 'only', not %r" % (options.event_mode,))
    if options.use_cookies and options.secure_cookies and not options.cookie_secret:
        raise ValueError('use_cookies with secure_cookies needs cookie_secret: the session '
                         'cookie is signed with it (or set --secure_cookies=false)')


def method_route(root):
    """The URL pattern of the method handler under ``root``, as in 1.0.12.

    ``/api`` serves ``/api``, ``/api/``, ``/api/echo`` and, like 1.0.12,
    ``/apiecho``.
    """
    return root.rstrip('/') + _PATH_GROUP


def socket_route(root, socket_path):
    """The URL pattern of the websocket handler: its group is the session id."""
    return posixpath.join(root, socket_path) + _SESSION_GROUP


def build_application(db_connection, service_id=0, process_count=1):
    """Make the application of one server process from the options.

    Sets the process's event manager up (unless ``event_mode`` is off):
    it listens on ``event_port + service_id`` and sends to the
    ``process_count`` processes of the server and to
    ``remote_event_receivers``, then ``event_init_module.invoke(manager)``
    is called.  Call it on the thread that runs the IOLoop, with the loop
    running, so event handlers meant for the main loop run there.
    """
    handlers = []
    if options.use_web_sockets:
        from toto.sockets import TotoSocketHandler
        handlers.append((socket_route(options.root, options.socket_path), TotoSocketHandler,
                         {'db_connection': db_connection}))
    if options.client_side_worker_path:
        from toto.clientsideworker import ClientSideWorkerSocketHandler
        handlers.append((posixpath.join(options.root, options.client_side_worker_path),
                         ClientSideWorkerSocketHandler))
    if options.event_mode != 'off':
        from toto.events import EventManager, configure_for_process
        configure_for_process(EventManager.instance(), service_id, process_count)
    if options.event_mode != 'only':
        from toto.handler import TotoHandler
        handlers.append((method_route(options.root), TotoHandler,
                         {'db_connection': db_connection}))
    return ServerApplication(handlers, **application_settings())


def application_settings():
    """The Application settings the options ask for."""
    settings = {}
    if options.cookie_secret:
        settings['cookie_secret'] = options.cookie_secret
    if options.autoreload:
        # 1.0.12 turned Tornado's whole debug mode on, which also serves
        # tracebacks to anyone; those stay off unless the handler's own
        # option asks for them.  Reloading is the server's (it restarts
        # every process: see toto._webserver_reload), not Tornado's.
        settings['compiled_template_cache'] = False
        settings['static_hash_cache'] = False
    settings['serve_traceback'] = bool(getattr(options, 'serve_tracebacks', False))
    if options.socket_max_message_size and options.socket_max_message_size > 0:
        settings['websocket_max_message_size'] = options.socket_max_message_size
    if options.socket_ping_interval and options.socket_ping_interval > 0:
        settings['websocket_ping_interval'] = options.socket_ping_interval
        if options.socket_ping_timeout and options.socket_ping_timeout > 0:
            settings['websocket_ping_timeout'] = options.socket_ping_timeout
    return settings


def server_limits():
    """HTTPServer keyword arguments from the size, timeout and proxy options.

    Tornado's idle timeout also bounds the wait for a request's line and
    headers.  0 (or less) keeps Tornado's own: 100 MB bodies, an hour idle,
    no body timeout.  ``--xheaders`` trusts a proxy's client headers.
    """
    limits = {}
    if options.xheaders:
        limits['xheaders'] = True
    if options.max_body_size and options.max_body_size > 0:
        limits['max_body_size'] = options.max_body_size
    if options.idle_connection_timeout and options.idle_connection_timeout > 0:
        limits['idle_connection_timeout'] = options.idle_connection_timeout
    if options.body_timeout and options.body_timeout > 0:
        limits['body_timeout'] = options.body_timeout
    return limits


def call_startup_function(path, db_connection, application):
    """Call ``module.function`` of ``--startup_function`` as 1.0.12's server did.

    It gets ``db_connection=`` and ``application=``; a function that takes
    only one of them (or neither) by name gets only that.  The module may be
    a dotted path (1.0.12 used the first two dotted parts only).
    """
    return call_with_accepted(path, {'db_connection': db_connection,
                                     'application': application})


class ServerApplication(web.Application):
    """A Tornado Application that knows what it has not finished answering.

    A request counts from the moment its headers are in until its handler
    finishes it (or its connection closes), and then until its answer has
    left the process.  An open websocket counts until it is closed.
    :meth:`unfinished` tells how many of those there are, and
    :meth:`close_websockets` asks every websocket's client to go.
    """

    def __init__(self, handlers=None, **settings):
        super(ServerApplication, self).__init__(handlers, **settings)
        # The connections (tornado HTTP1Connection, one per request) of the
        # requests being answered; weak, so one whose handler was dropped
        # without finishing goes by itself.
        self._answering = weakref.WeakSet()
        # Connections of finished requests whose answer is still being written.
        self._writing = weakref.WeakSet()
        self._websockets = weakref.WeakSet()
        # The streams of the websockets close_websockets() closed: the
        # handler lets go of its protocol at once, the stream closes once
        # the client has answered.
        self._closing_streams = []

    def find_handler(self, request, **kwargs):
        # Called once per request, once its headers are in: from here on it
        # is being answered.
        if request.connection is not None:
            self._answering.add(request.connection)
        return super(ServerApplication, self).find_handler(request, **kwargs)

    def log_request(self, handler):
        # Called once per request, when its handler finishes it.
        connection = handler.request.connection
        if connection is not None:
            self._answering.discard(connection)
            if handler.get_status() == 101:
                self._websockets.add(handler)
            elif _still_writing(connection):
                self._writing.add(connection)
        super(ServerApplication, self).log_request(handler)

    def unfinished(self):
        """How many requests are being answered, answers written and websockets open."""
        return (sum(1 for connection in list(self._answering) if _connected(connection))
                + sum(1 for connection in list(self._writing) if _still_writing(connection))
                + sum(1 for handler in list(self._websockets)
                      if getattr(handler, 'ws_connection', None) is not None)
                + sum(1 for stream in self._closing_streams if not stream.closed()))

    def close_websockets(self, code=1001, reason='the server is stopping'):
        """Close every open websocket (1001: going away); returns how many."""
        closed = 0
        for handler in list(self._websockets):
            protocol = getattr(handler, 'ws_connection', None)
            if protocol is None:
                continue
            stream = getattr(protocol, 'stream', None)
            try:
                handler.close(code, reason)
            except Exception:
                logger.exception('closing a websocket failed')
                continue
            closed += 1
            if stream is not None:
                self._closing_streams.append(stream)
        return closed


def _stream(connection):
    return getattr(connection, 'stream', None)


def _connected(connection):
    # A detached connection (a websocket took it over) has no stream.
    stream = _stream(connection)
    return stream is not None and not stream.closed()


def _still_writing(connection):
    stream = _stream(connection)
    return stream is not None and not stream.closed() and stream.writing()
