"""The options of the web server (:class:`toto.server.TotoServer`) and its handler.

Importing this module defines them in :data:`tornado.options.options`, with
1.0.12's names and defaults; :mod:`toto.server` and :mod:`toto.handler`
import it and read the values when a server starts or a handler is
configured::

    import toto._server_options  # noqa: F401 - defines the options
    from tornado.options import options

    options.parse_command_line(['prog', '--port=8080', '--hmac_enabled'])

Options that the worker service shares with the server (``method_module``,
``startup_function``, ``debug``, the ``event_*`` family, the database) are
defined where both find them: :mod:`toto._worker_options`, :mod:`toto.service`,
:mod:`toto.events` and :mod:`toto.dbconnection`. Options this package adds to
1.0.12's are defined in the blocks at the end, each with the reason it exists.
"""

from __future__ import absolute_import, division, print_function

# method_module, startup_function, the database and event options: shared
# with the worker service, defined once there.
import toto._worker_options  # noqa: F401
import toto.service  # noqa: F401 - processes, daemon, pidfile, debug
from toto.options import safe_define

_SERVER_GROUP = 'web server'
_HANDLER_GROUP = 'web handler'

# --- the server (1.0.12's server.py options) ---------------------------------

safe_define('port', default=8888, type=int, group=_SERVER_GROUP,
            help='Port the server listens on; every process shares the one socket')
safe_define('root', default='/', type=str, group=_SERVER_GROUP,
            help='URL path under which the methods are served')
safe_define('cookie_secret', default=None, type=str, group=_SERVER_GROUP,
            help='Key that signs session cookies (tornado cookie_secret)')
safe_define('autoreload', default=False, type=bool, group=_SERVER_GROUP,
            help='Restart the server when a module it imported or the conf file changes '
                 '(tracebacks are served only with --serve_tracebacks)')
safe_define('use_cookies', default=False, type=bool, group=_SERVER_GROUP,
            help='Carry the session id in a cookie as well as in the header')
safe_define('secure_cookies', default=True, type=bool, group=_SERVER_GROUP,
            help='Sign the session cookie with cookie_secret')
safe_define('cookie_domain', default=None, type=str, group=_SERVER_GROUP,
            help='Domain attribute of the session cookie')
safe_define('socket_opened_method', default=None, type=str, group=_SERVER_GROUP,
            help='module.function called with each websocket that opens')
safe_define('socket_closed_method', default=None, type=str, group=_SERVER_GROUP,
            help='module.function called with each websocket that closes')
safe_define('socket_method_module', default=None, type=str, group=_SERVER_GROUP,
            help='Package of the methods websocket messages call')
safe_define('use_web_sockets', default=False, type=bool, group=_SERVER_GROUP,
            help='Serve websockets under root + socket_path')
safe_define('socket_path', default='websocket', type=str, group=_SERVER_GROUP,
            help='Path of the websocket route, under root')
safe_define('client_side_worker_path', default='', type=str, group=_SERVER_GROUP,
            help='Path of the client-side worker websocket route; empty: none')

# --- the handler (1.0.12's handler.py options) --------------------------------

safe_define('allow_origin', default='*', type=str, group=_HANDLER_GROUP,
            help='Access-Control-Allow-Origin sent with every answer')
safe_define('method_select', default='both', type=str, group=_HANDLER_GROUP,
            help='Where the method name is read: url, parameter or both')
safe_define('bson_enabled', default=False, type=bool, group=_HANDLER_GROUP,
            help='Accept and answer application/bson bodies')
safe_define('msgpack_enabled', default=False, type=bool, group=_HANDLER_GROUP,
            help='Accept and answer application/msgpack bodies')
safe_define('hmac_enabled', default=False, type=bool, group=_HANDLER_GROUP,
            help='Verify request HMACs and sign responses with the session key')

# --- options this package adds: handler ---------------------------------------

safe_define('serve_tracebacks', default=False, type=bool, group=_HANDLER_GROUP,
            help='Put Python tracebacks in error pages (1.0.12 did with --autoreload); '
                 'off, error pages and Toto errors never show server code')
safe_define('allow_cross_site_cookies', default=False, type=bool, group=_HANDLER_GROUP,
            help='Accept a session cookie on a request another site sent (1.0.12 did: '
                 'any page could make a signed-in user call a method); header-carried '
                 'session ids are never affected')
safe_define('cors_allow_headers', default=[], type=str, multiple=True,
            group=_HANDLER_GROUP, metavar='HEADER,...',
            help='Request headers a CORS preflight allows besides origin, '
                 'x-toto-session-id, x-toto-hmac and content-type; * allows whatever '
                 'the preflight asks for (1.0.12)')
safe_define('cookie_httponly', default=True, type=bool, group=_HANDLER_GROUP,
            help='Mark the session cookie HttpOnly, out of reach of page scripts '
                 '(1.0.12 did not)')
safe_define('single_content_type', default=False, type=bool, group=_HANDLER_GROUP,
            help="Send one Content-Type header; by default answers carry 1.0.12's two "
                 '(text/html, then the real type), which some clients read')

# --- options this package adds: server ----------------------------------------

# 1.0.12 listened on every interface, with Tornado's limits: 100 MB bodies,
# connections idle for an hour, no bound on the time a body may take.
safe_define('bind_host', default='', type=str, group=_SERVER_GROUP, metavar='HOST',
            help='Interface the server listens on; empty: every interface (1.0.12)')
safe_define('max_body_size', default=10 * 1024 * 1024, type=int, group=_SERVER_GROUP,
            metavar='BYTES',
            help='Largest request body accepted; a larger one is refused with 413 '
                 'before it is read (1.0.12: 104857600, Tornado\'s default)')
safe_define('idle_connection_timeout', default=60.0, type=float, group=_SERVER_GROUP,
            metavar='SECONDS',
            help='Close a connection that is idle, or still sending a request\'s line '
                 'and headers, after this long (1.0.12: 3600)')
safe_define('body_timeout', default=120.0, type=float, group=_SERVER_GROUP,
            metavar='SECONDS',
            help='Close a connection whose request body takes longer than this to '
                 'arrive; 0: no limit (1.0.12)')
safe_define('xheaders', default=False, type=bool, group=_SERVER_GROUP,
            help='Behind a proxy: take the client\'s address and scheme from the '
                 'X-Real-Ip/X-Forwarded-For and X-Scheme/X-Forwarded-Proto headers, so '
                 'that session cookies are Secure when the client used https; only '
                 'when every request comes through the proxy (1.0.12: off)')
safe_define('socket_max_message_size', default=1024 * 1024, type=int, group=_SERVER_GROUP,
            metavar='BYTES',
            help='Largest websocket message accepted; a larger one closes the socket '
                 'with code 1009 (Tornado\'s default: 10 MiB)')
safe_define('socket_ping_interval', default=30.0, type=float, group=_SERVER_GROUP,
            metavar='SECONDS',
            help='Ping each websocket this often, so proxies keep it open and a '
                 'peer that went away is noticed; 0: no pings')
safe_define('socket_ping_timeout', default=0.0, type=float, group=_SERVER_GROUP,
            metavar='SECONDS',
            help='Close a websocket whose peer has not answered a ping within this '
                 'long; 0: Tornado\'s default (from Tornado 6.5, which caps it at the '
                 'interval: one interval; before: three intervals, at least 30 s)')
safe_define('socket_allowed_origins', type=str, multiple=True, group=_SERVER_GROUP,
            metavar='ORIGIN,...',
            help='Origins (https://app.example.com) whose pages may open websockets '
                 'besides the server\'s own host; * allows any page')
