"""The HTTP worker side: serve Toto method modules to HTTPWorkerConnection.

The original Toto package had only ZeroMQ workers.  This module serves the
same method modules over HTTP: each ``POST`` carries one call, encoded as the
client's :class:`~toto.httpworkerconnection.HTTPWorkerConnection` encodes it,
and the response body is the encoded result::

    # python httpworker.py --method_module=methods --http_worker_port=8080
    from toto.httpworker import TotoHTTPWorkerService

    if __name__ == '__main__':
        TotoHTTPWorkerService(processes=4).run()

    # and in the application:
    #   --worker_transport=http --worker_address=http://127.0.0.1:8080/

Status codes: 200 with the method's result, 404 with an error body when the
method does not exist, 500 with an error body when it raised, 400 when the
request body cannot be decoded.  The error bodies are
``{'error': {'code': ..., 'value': ...}}``, as a ZeroMQ worker answers.

To embed the worker in a Tornado application of your own, mount
:class:`TotoHTTPWorkerHandler` with :func:`make_application` or your own
route.
"""

from __future__ import absolute_import, division, print_function

import collections
import errno
import functools
import importlib
import json
import logging
import re
import socket
import time

import six
from tornado import gen, httputil, web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.options import options

from toto._codec import MessageCodec, load_module
from toto._security import shortened, warn_once_if_exposed
from toto.exceptions import ERROR_SERVER
from toto.options import safe_define
from toto.service import TotoService
# The worker-service options (method_module, compression_module, ...) are
# shared with the ZeroMQ worker.
from toto import _worker_options  # noqa: F401
from toto._methods import (call_startup_function, error_info, find_method, is_awaitable,
                           run_detached)

logger = logging.getLogger('toto.httpworker')

_OPTION_GROUP = 'http worker service'

safe_define('http_worker_host', default='127.0.0.1', type=str, group=_OPTION_GROUP,
            metavar='HOST',
            help='Interface the HTTP worker listens on ("" for all)')
safe_define('http_worker_port', default=8888, type=int, group=_OPTION_GROUP, metavar='PORT',
            help='Port the HTTP worker listens on (0 picks a free one)')
safe_define('http_worker_path', default='/', type=str, group=_OPTION_GROUP, metavar='PATH',
            help='URL path the HTTP worker answers calls on')
safe_define('http_worker_certfile', type=str, group=_OPTION_GROUP, metavar='FILE',
            help='PEM certificate: serve https:// instead of http://')
safe_define('http_worker_keyfile', type=str, group=_OPTION_GROUP, metavar='FILE',
            help='PEM private key of --http_worker_certfile')
safe_define('http_worker_allowed_hosts', type=str, multiple=True, group=_OPTION_GROUP,
            metavar='NAME,.DOMAIN,*',
            help='Host names the HTTP worker answers besides IP addresses, localhost '
                 'and this machine\'s names (.example.com: every name under it; '
                 '*: any). Other Host headers are refused, against DNS rebinding')
safe_define('http_worker_idle_timeout', default=45.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='Close a connection that has been idle, or sending a request\'s line '
                 'and headers, this long; 0: after an hour (Tornado\'s default)')
safe_define('http_worker_body_timeout', default=45.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='Close a connection whose request body takes longer than this to '
                 'arrive; 0: no limit')
safe_define('http_worker_max_connections', default=0, type=int, group=_OPTION_GROUP,
            metavar='N',
            help='Connections each HTTP worker process holds at most: a new one past '
                 'this closes the one that has waited for a request the longest (or is '
                 'refused with 503 when all are being answered). 0: the open-files '
                 'limit (ulimit -n) less a quarter of it, at least 32, kept for other '
                 'files; -1: no cap')

#: The serializers picked by request ``Content-Type`` when the service has no
#: ``serialization_module`` of its own.  Only these types are decoded: a body
#: of any other type is refused with 415, before any decoding.
CONTENT_TYPES = {
    'application/pickle': None,
    'application/x-pickle': None,
    'application/json': json,
}

# What a web page can send to any address without the browser asking the
# server first (the CORS "simple request" types), and no type at all.  A
# worker call never comes as one, so refusing them keeps pages out whatever
# the serializer.
_BROWSER_TYPES = frozenset(['', 'text/plain', 'application/x-www-form-urlencoded',
                            'multipart/form-data'])

# The Content-Type of the answers of a worker with a serialization_module.
_MODULE_TYPES = {
    'json': 'application/json',
    'simplejson': 'application/json',
    'pickle': 'application/pickle',
    'cPickle': 'application/pickle',
    'msgpack': 'application/msgpack',
}


_codecs = {}


def _codec(compression, serialization, max_size):
    """The MessageCodec for a pair of modules, made once: handlers are per request."""
    key = (compression, serialization, max_size)
    codec = _codecs.get(key)
    if codec is None:
        codec = _codecs[key] = MessageCodec(compression, serialization, max_size=max_size)
    return codec


def _media_type(header):
    return (header or '').split(';', 1)[0].strip().lower()


def _answer_type(serialization):
    """The Content-Type of answers encoded with the ``serialization`` module."""
    if serialization is None:
        return 'application/pickle'
    return _MODULE_TYPES.get(serialization.__name__, 'application/octet-stream')


class HostCheck(object):
    """Decide which ``Host`` headers an HTTP worker answers.

    A web page can make the browser send requests to a worker on the user's
    machine under a name of its own that it points at ``127.0.0.1`` (DNS
    rebinding); the ``Host`` header then carries that name.  Allowed:
    IP addresses, ``localhost`` and names under ``.localhost``, this
    machine's own names, and ``allowed_hosts``, where an entry
    starting with a dot also allows every name under it and ``*`` allows any
    host.  A request without a ``Host`` (HTTP/1.0) is allowed: browsers
    always send one.
    """

    def __init__(self, allowed_hosts=()):
        entries = set(_host_name(entry) for entry in allowed_hosts if entry.strip())
        self.any_host = '*' in entries
        self._suffixes = tuple(entry for entry in entries if entry.startswith('.'))
        self._names = set(entry for entry in entries if not entry.startswith('.'))
        self._own_names = None

    def allows(self, header):
        """Tell whether to answer a request whose ``Host`` header is ``header``."""
        if self.any_host or header is None:
            return True
        name = _host_name(_without_port(header))
        if not name:
            return False
        if _is_ip_address(name) or name == 'localhost' or name.endswith('.localhost'):
            return True
        if name in self._names or name.endswith(self._suffixes) or \
                ('.' + name) in self._suffixes:
            return True
        return name in self._machine_names()

    def _machine_names(self):
        if self._own_names is None:
            names = set()
            for lookup in (socket.gethostname, socket.getfqdn):
                try:
                    names.add(_host_name(lookup()))
                except (socket.error, UnicodeError):
                    pass
            self._own_names = names
        return self._own_names


def _host_name(text):
    return text.strip().lower().rstrip('.')


def _without_port(host):
    if host.startswith('['):
        return host[1:host.find(']')] if ']' in host else ''
    if host.count(':') == 1:
        return host.split(':', 1)[0]
    return host


def _is_ip_address(name):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, name)
            return True
        except (socket.error, ValueError, UnicodeError):
            pass
    return False


class _ThrottledWarning(object):
    """A warning that peers can cause at will: logged at most once per ``interval``
    seconds, with how many times it happened since.

    ``what`` is a format for that count and an ``s`` for plurals, such as
    ``'refused %d request%s'``.
    """

    def __init__(self, what, interval=10.0):
        self.what = what
        self.interval = interval
        self._last = None
        self._since = 0

    def happened(self, detail):
        """Count one more; log if the interval has passed (``detail``: the latest one)."""
        self._since += 1
        now = time.time()
        if self._last is not None and 0 <= now - self._last < self.interval:
            return
        logger.warning('%s in the last %.0f s; latest %s',
                       self.what % (self._since, '' if self._since == 1 else 's'),
                       now - self._last if self._last is not None else 0, detail)
        self._last = now
        self._since = 0


_refusals = _ThrottledWarning('refused %d request%s')


class TotoHTTPWorkerHandler(web.RequestHandler):
    """Run one call per ``POST`` and answer with its encoded result.

    Set up by :func:`make_application` with ``method_module``,
    ``compression``, ``serialization``, ``debug``, ``max_message_size``
    and ``host_check``.  With a ``serialization`` module every request is
    decoded with it; without one the ``Content-Type`` chooses between pickle
    (``application/pickle``) and json (``application/json``), and no other
    type is decoded.

    Requests a web browser could have sent are refused before anything is
    decoded: one with an ``Origin`` header (403), one whose ``Host`` the
    ``host_check`` does not allow (403), and one whose ``Content-Type`` is
    missing or one a page can send across sites (``text/plain``, forms;
    415).  Programs calling workers send none of these.
    """

    def initialize(self, method_module, compression=None, serialization=None, debug=False,
                   max_message_size=None, host_check=None, db_connection=None):
        self.method_module = method_module
        #: The service's ``--database`` connection and its driver's handle,
        #: as a ZeroMQ worker has them.
        self.db_connection = db_connection
        self.db = getattr(db_connection, 'db', None) if db_connection is not None else None
        self.debug = debug
        self._host_check = host_check
        media_type = _media_type(self.request.headers.get('Content-Type'))
        self._refusal = None
        if media_type in _BROWSER_TYPES:
            self._refusal = (415, 'a worker call needs the Content-Type of its serializer, '
                                  'not %s' % shortened(repr(media_type)))
        if serialization is not None:
            self._codec = _codec(compression, serialization, max_message_size)
            self._mime = _answer_type(serialization)
        elif media_type in CONTENT_TYPES:
            self._codec = _codec(compression, CONTENT_TYPES[media_type], max_message_size)
            self._mime = _answer_type(CONTENT_TYPES[media_type])
        else:
            self._codec = _codec(compression, None, max_message_size)
            self._mime = _answer_type(None)
            if self._refusal is None:
                self._refusal = (415, 'unknown Content-Type %s: use one of %s' % (
                    shortened(repr(media_type)), ', '.join(sorted(CONTENT_TYPES))))

    def prepare(self):
        headers = self.request.headers
        refusal = None
        if 'Origin' in headers:
            refusal = (403, 'requests from web pages (with an Origin header) are refused')
        elif self._host_check is not None and not self._host_check.allows(
                headers.get('Host')):
            refusal = (403, 'Host %s is not one this worker serves (see '
                            '--http_worker_allowed_hosts)' % shortened(repr(headers.get('Host'))))
        elif self.request.method == 'POST':
            refusal = self._refusal
        if refusal is not None:
            status, reason = refusal
            _refusals.happened('from %s: %s' % (self.request.remote_ip, reason))
            self._answer(status, {'error': {'code': ERROR_SERVER, 'value': reason}})

    @gen.coroutine
    def post(self, *path_args):
        try:
            message = self._codec.loads(self.request.body)
            name = message['method']
            parameters = message.get('parameters', {})
        except Exception as error:
            self._answer(400, {'error': self._error_info(error)})
            return
        try:
            method = find_method(self.method_module, name).invoke
        except AttributeError as error:
            self._answer(404, {'error': self._error_info(error)})
            return
        except Exception as error:
            # A method module that fails to import, say.
            self._answer(500, {'error': self._error_info(error)})
            return
        try:
            if getattr(method, 'asynchronous', False):
                # Acknowledge first, as the ZeroMQ worker does: the caller
                # gets None and the method runs after the response is sent.
                self._answer(200, None)
                IOLoop.current().add_callback(self._run_detached, method, parameters)
                return
            result = method(self, parameters)
            if is_awaitable(result):
                result = yield gen.convert_yielded(result)
        except Exception as error:
            self._answer(500, {'error': self._error_info(error)})
            return
        self._answer(200, result)

    def _run_detached(self, method, parameters):
        run_detached(functools.partial(method, self, parameters), IOLoop.current(),
                     self._error_info)

    def _error_info(self, error):
        return error_info(error, self.debug)

    def _answer(self, status, result):
        try:
            body = b'' if result is None else self._codec.dumps(result)
        except Exception as error:
            status = 500
            body = self._codec.dumps({'error': self._error_info(error)})
        self.set_status(status)
        self.set_header('Content-Type', self._mime)
        self.finish(body)

    def check_xsrf_cookie(self):
        """No XSRF cookie: requests from browsers are refused in :meth:`prepare`."""


def make_application(method_module, path='/', compression=None, serialization=None,
                     debug=False, max_message_size=None, allowed_hosts=None,
                     db_connection=None):
    """Return a Tornado application that serves ``method_module`` on ``path``.

    ``method_module`` is a module or its dotted name; ``compression`` and
    ``serialization`` are modules (or names) that must match the clients'.
    ``max_message_size`` bounds what a compressed call may inflate to.
    ``allowed_hosts`` lists the ``Host`` names the worker answers besides IP
    addresses, ``localhost`` and the machine's own names (see
    :class:`HostCheck`; ``['*']`` turns the check off).  Methods find
    ``db_connection`` on their handler, as on a ZeroMQ worker.
    """
    if isinstance(method_module, six.string_types):
        method_module = importlib.import_module(method_module)
    settings = dict(method_module=method_module, compression=load_module(compression),
                    serialization=load_module(serialization), debug=debug,
                    max_message_size=max_message_size,
                    host_check=HostCheck(allowed_hosts or ()), db_connection=db_connection)
    route = '^' + re.escape(path.rstrip('/')) + '/?$'
    return web.Application([(route, TotoHTTPWorkerHandler, settings)])


def server_settings():
    """HTTPServer keyword arguments from the TLS, size and timeout options."""
    settings = {}
    if options.max_message_size and options.max_message_size > 0:
        settings['max_body_size'] = options.max_message_size
    if options.http_worker_certfile:
        settings['ssl_options'] = {'certfile': options.http_worker_certfile,
                                   'keyfile': options.http_worker_keyfile or None}
    # Tornado's idle timeout also bounds the wait for a request's line and
    # headers; 0 leaves its default of an hour, and its default body timeout
    # is none.
    if options.http_worker_idle_timeout and options.http_worker_idle_timeout > 0:
        settings['idle_connection_timeout'] = options.http_worker_idle_timeout
    if options.http_worker_body_timeout and options.http_worker_body_timeout > 0:
        settings['body_timeout'] = options.http_worker_body_timeout
    return settings


# -- holding connections within the open-files limit ---------------------------------

# Files an HTTP worker process keeps for itself when it derives its connection
# cap from the open-files limit: its listening socket, its event loop's,
# logs, the database, and what methods open.  A quarter of the limit, at least:
_RESERVED_FILES = 32
# Accepts per turn of the event loop, as Tornado's own accept handler.
_ACCEPT_BATCH = 128
# When the process is out of descriptors and no connection can be closed for
# a new one, it stops accepting for this long: connections wait in the
# listening socket's backlog instead of spinning the loop.
_ACCEPT_PAUSE = 0.1
_OUT_OF_FILES = frozenset([errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
_NOTHING_TO_ACCEPT = frozenset([errno.EAGAIN, errno.EWOULDBLOCK])
# Descriptors a process that ran out of them keeps free when it lowers its cap
# (an eighth of its connections, at least).
_SPARE_FILES = 8
# What a connection past the cap gets when every open one is being answered.
_BUSY_ANSWER = (b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n'
                b'Content-Length: 32\r\nConnection: close\r\n\r\n'
                b'too many connections; try again\n')


def _connection_limit(max_connections=None):
    """The connection cap of an HTTP worker process for ``--http_worker_max_connections``.

    A positive value is the cap, a negative one means none (None is
    returned), and 0 (or None) derives it from the soft open-files limit
    (``RLIMIT_NOFILE``) less a reserve for the process's other files: 768
    connections under the common limit of 1,024.
    """
    if max_connections is None:
        max_connections = options.http_worker_max_connections
    if max_connections and max_connections < 0:
        return None
    if max_connections:
        return max_connections
    try:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):  # no such limit on this system
        limit = resource = None
    if resource is None or limit == resource.RLIM_INFINITY or limit <= 0:
        return 10000
    return max(1, limit - max(_RESERVED_FILES, limit // 4))


class _ConnectionLedger(object):
    """The connections of one server, and which one may be closed to make room.

    A connection waiting for a request -- idle, or still sending one -- may
    be closed for a new connection; the oldest one goes first.  One whose
    request is being answered may not.
    """

    def __init__(self):
        self._waiting = collections.OrderedDict()  # stream: None, oldest first
        self._answering = set()

    def __len__(self):
        return len(self._waiting) + len(self._answering)

    def opened(self, stream):
        self._waiting[stream] = None

    def waiting(self, stream):
        """``stream`` waits for its next request (a connection that closed stays out)."""
        if stream in self._answering:
            self._answering.discard(stream)
        elif stream in self._waiting:
            del self._waiting[stream]
        else:
            return
        self._waiting[stream] = None

    def answering(self, stream):
        """``stream`` has sent its whole request: it is being answered."""
        if stream in self._waiting:
            del self._waiting[stream]
            self._answering.add(stream)

    def closed(self, stream):
        self._waiting.pop(stream, None)
        self._answering.discard(stream)

    def longest_waiting(self):
        """The connection that has waited for its request the longest, or None."""
        return next(iter(self._waiting), None)


class _WatchedRequest(httputil.HTTPMessageDelegate):
    """Passes a request on to ``delegate``, and calls ``received()`` once it has all come."""

    def __init__(self, delegate, received):
        self._delegate = delegate
        self._received = received

    def headers_received(self, start_line, headers):
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self._delegate.data_received(chunk)

    def finish(self):
        self._received()
        return self._delegate.finish()

    def on_connection_close(self):
        return self._delegate.on_connection_close()


class _CappedHTTPServer(HTTPServer):
    """An HTTPServer that holds at most ``max_connections`` and outlives running out of files.

    A connection past the cap closes the one that has waited for a request
    the longest, so idle connections cannot keep callers out; when every
    connection is being answered, the new one gets ``503`` and is closed.
    When accepting fails for want of file descriptors, it closes a waiting
    connection in the same way, or pauses accepting for a moment, instead of
    logging a traceback on every turn of the loop.  Each of these is logged
    at most once every ten seconds.  ``max_connections`` None: no cap.
    """

    def initialize(self, request_callback, max_connections=None, **kwargs):
        HTTPServer.initialize(self, request_callback, **kwargs)
        #: The cap: ``max_connections``, lowered when the process runs out of files.
        self.max_connections = max_connections
        self._ledger = _ConnectionLedger()
        self._closed_for_room = _ThrottledWarning(
            'closed %d idle or slow connection%s to make room for new ones')
        self._refused = _ThrottledWarning(
            'refused %d connection%s with 503: all the connections are being answered')
        self._out_of_files = _ThrottledWarning('%d accept%s failed for want of files')
        self._cap_lowered = _ThrottledWarning(
            'lowered the connection cap %d time%s for want of files')

    def add_sockets(self, sockets):
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_from(sock)

    def _accept_from(self, sock):
        """Accept connections on ``sock`` from the loop; returns what stops it."""
        io_loop = IOLoop.current()
        state = {'stopped': False, 'pause': None}

        def accept(fd, events):
            made_room = False
            for _ in range(_ACCEPT_BATCH):
                if state['stopped'] or state['pause'] is not None:
                    return
                try:
                    connection, address = sock.accept()
                except (OSError, socket.error) as error:
                    code = error.args[0] if error.args else None
                    if code in _NOTHING_TO_ACCEPT:
                        return
                    if code == errno.ECONNABORTED:
                        continue  # it went away in the backlog
                    if code not in _OUT_OF_FILES:
                        raise
                    self._out_of_files.happened('on %s: %s' % (_address_text(sock), error))
                    self._lower_cap()
                    # A connection closed frees a descriptor for the next accept.
                    # If that still fails, the files are short elsewhere (the
                    # whole system, say), and closing more would not help.
                    if made_room or not self._close_for_room():
                        pause()
                    made_room = True
                    continue
                made_room = False
                _close_on_exec(connection)
                self._take(connection, address)

        def pause():
            io_loop.remove_handler(sock)
            state['pause'] = io_loop.call_later(_ACCEPT_PAUSE, resume)

        def resume():
            state['pause'] = None
            if not state['stopped']:
                io_loop.add_handler(sock, accept, IOLoop.READ)

        def stop():
            state['stopped'] = True
            if state['pause'] is not None:
                io_loop.remove_timeout(state['pause'])
            else:
                io_loop.remove_handler(sock)

        io_loop.add_handler(sock, accept, IOLoop.READ)
        return stop

    def _take(self, connection, address):
        peer = address[0] if address else '?'
        if self.max_connections is not None and len(self._ledger) >= self.max_connections:
            # Down to one below the cap: it may just have been lowered.
            while len(self._ledger) >= self.max_connections and self._close_for_room():
                pass
            if len(self._ledger) >= self.max_connections:
                self._refused.happened('from %s (at most %d)' % (peer, self.max_connections))
                _answer_busy(connection)
                return
            self._closed_for_room.happened('for one from %s (at most %d)'
                                           % (peer, self.max_connections))
        self._handle_connection(connection, address)

    def _lower_cap(self):
        """Out of files: hold fewer connections than now, keeping some files for the rest.

        A method's imports, logs and own files need descriptors too; with every
        one taken by a connection they would fail.  The cap stays lowered.  When
        few connections are open, they are not what took the files, and the
        cap stays as it is.
        """
        held = len(self._ledger)
        lowered = held - max(_SPARE_FILES, held // 8)
        if lowered < _SPARE_FILES:
            return
        if self.max_connections is None or lowered < self.max_connections:
            self.max_connections = lowered
            self._cap_lowered.happened('to %d, with %d connections open (see '
                                       '--http_worker_max_connections and ulimit -n)'
                                       % (lowered, held))

    def _close_for_room(self):
        """Close the connection waiting for a request the longest; False if there is none."""
        stream = self._ledger.longest_waiting()
        if stream is None:
            return False
        self._ledger.closed(stream)
        stream.close()
        return True

    def handle_stream(self, stream, address):
        self._ledger.opened(stream)
        HTTPServer.handle_stream(self, stream, address)

    def start_request(self, server_conn, request_conn):
        stream = server_conn.stream
        self._ledger.waiting(stream)
        return _WatchedRequest(HTTPServer.start_request(self, server_conn, request_conn),
                               functools.partial(self._ledger.answering, stream))

    def on_close(self, server_conn):
        self._ledger.closed(server_conn.stream)
        HTTPServer.on_close(self, server_conn)


def _answer_busy(connection):
    try:
        connection.setblocking(False)
        connection.send(_BUSY_ANSWER)
    except (OSError, socket.error):
        pass  # gone, or no room: it is closed all the same
    finally:
        connection.close()


def _close_on_exec(connection):
    # Python 3 makes sockets that way; Python 2 does not.
    if six.PY2:
        import fcntl
        flags = fcntl.fcntl(connection.fileno(), fcntl.F_GETFD)
        fcntl.fcntl(connection.fileno(), fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)


def _address_text(sock):
    try:
        return '%s:%s' % sock.getsockname()[:2]
    except (OSError, socket.error):
        return 'a closed socket'


class TotoHTTPWorkerService(TotoService):
    """Run ``--processes`` HTTP worker processes sharing one listening port.

    Options: ``method_module``, ``http_worker_host``, ``http_worker_port``,
    ``http_worker_path``, ``http_worker_certfile``, ``http_worker_keyfile``,
    ``http_worker_idle_timeout``, ``http_worker_body_timeout``,
    ``http_worker_max_connections``, ``max_message_size``,
    ``compression_module``, ``serialization_module``, ``startup_function``
    (called with ``worker=None`` and the process's ``db_connection``: there
    is no per-process worker object), ``debug``, the database options of
    :mod:`toto.dbconnection` and the process and daemon options of
    :class:`~toto.service.TotoService`.

    Each process closes connections that stay idle, or take longer to send
    a request's line and headers, than ``http_worker_idle_timeout`` (45 s),
    and those whose body takes longer than ``http_worker_body_timeout``
    (45 s).  It holds at most ``http_worker_max_connections`` (by default
    derived from its open-files limit): a new connection past that closes
    the one that has waited for a request the longest, and is refused with
    ``503`` when every connection is being answered.
    """

    module_options = ('method_module',)
    function_options = ('startup_function',)

    def _check_options(self):
        from toto.dbconnection import check_configured_database
        check_configured_database()

    def prepare(self):
        self._check_options()
        importlib.import_module(options.method_module)
        warn_once_if_exposed('the HTTP worker', options.http_worker_host or '*',
                             options.serialization_module, False,
                             advice='put it behind a proxy that authenticates clients')
        # Bound once in the parent: the processes share the socket and the
        # kernel spreads connections over them.
        self.sockets = bind_sockets(options.http_worker_port, options.http_worker_host or None)
        self.port = self.sockets[0].getsockname()[1]
        limit = _connection_limit()
        logger.info('HTTP worker listening on %s://%s:%d%s (%s)',
                    'https' if options.http_worker_certfile else 'http',
                    options.http_worker_host or '*', self.port, options.http_worker_path,
                    'no connection cap' if limit is None else
                    'at most %d connections per process' % limit)

    def main_loop(self):
        from toto.dbconnection import configured_connection
        self._db_connection = configured_connection()
        if options.startup_function:
            call_startup_function(options.startup_function, None, self._db_connection)
        loop = IOLoop(make_current=False)
        # Start serving from inside the loop so the server binds to it on
        # every Tornado version.
        loop.add_callback(self._serve)
        loop.start()

    def _serve(self):
        application = make_application(options.method_module, options.http_worker_path,
                                       compression=options.compression_module or None,
                                       serialization=options.serialization_module or None,
                                       debug=options.debug,
                                       max_message_size=options.max_message_size,
                                       allowed_hosts=self._allowed_hosts(),
                                       db_connection=self._db_connection)
        server = _CappedHTTPServer(application, max_connections=_connection_limit(),
                                   **server_settings())
        server.add_sockets(self.sockets)

    @staticmethod
    def _allowed_hosts():
        allowed = list(options.http_worker_allowed_hosts or ())
        if options.http_worker_host:
            allowed.append(options.http_worker_host)
        return allowed


__all__ = ['HostCheck', 'TotoHTTPWorkerHandler', 'TotoHTTPWorkerService', 'make_application']
