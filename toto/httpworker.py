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

import functools
import importlib
import json
import logging
import re

import six
from tornado import gen, web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.options import options

from toto._codec import MessageCodec, load_module
from toto._security import warn_once_if_exposed
from toto.options import safe_define
from toto.service import TotoService
from toto.worker import (_is_awaitable, _run_detached, call_startup_function, error_info,
                         find_method)

# The worker-service options (method_module, compression_module, ...) are
# shared with the ZeroMQ worker and defined there.
import toto.worker  # noqa: F401

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

#: The serializers picked by request ``Content-Type`` when the service has no
#: ``serialization_module`` of its own.
CONTENT_TYPES = {
    'application/pickle': None,
    'application/x-pickle': None,
    'application/json': json,
}


_codecs = {}


def _codec(compression, serialization):
    """The MessageCodec for a pair of modules, made once: handlers are per request."""
    key = (compression, serialization)
    codec = _codecs.get(key)
    if codec is None:
        codec = _codecs[key] = MessageCodec(compression, serialization)
    return codec


def _media_type(header):
    return (header or '').split(';', 1)[0].strip().lower()


class TotoHTTPWorkerHandler(web.RequestHandler):
    """Run one call per ``POST`` and answer with its encoded result.

    Set up by :func:`make_application` with ``method_module``,
    ``compression``, ``serialization`` and ``debug``.  With a
    ``serialization`` module every request is decoded with it, whatever its
    ``Content-Type`` (so a json-only worker never unpickles); without one the
    ``Content-Type`` chooses between pickle and json.
    """

    def initialize(self, method_module, compression=None, serialization=None, debug=False):
        self.method_module = method_module
        self.debug = debug
        if serialization is not None:
            self._codec = _codec(compression, serialization)
            # Answer in the type the client says it speaks.
            self._mime = _media_type(self.request.headers.get('Content-Type')) or None
        else:
            media_type = _media_type(self.request.headers.get('Content-Type'))
            if media_type not in CONTENT_TYPES:
                media_type = 'application/pickle'
            self._codec = _codec(compression, CONTENT_TYPES[media_type])
            self._mime = media_type

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
        try:
            if getattr(method, 'asynchronous', False):
                # Acknowledge first, as the ZeroMQ worker does: the caller
                # gets None and the method runs after the response is sent.
                self._answer(200, None)
                IOLoop.current().add_callback(self._run_detached, method, parameters)
                return
            result = method(self, parameters)
            if _is_awaitable(result):
                result = yield gen.convert_yielded(result)
        except Exception as error:
            self._answer(500, {'error': self._error_info(error)})
            return
        self._answer(200, result)

    def _run_detached(self, method, parameters):
        _run_detached(functools.partial(method, self, parameters), IOLoop.current(),
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
        if self._mime:
            self.set_header('Content-Type', self._mime)
        else:
            self.set_header('Content-Type', 'application/octet-stream')
        self.finish(body)

    def check_xsrf_cookie(self):
        """Worker calls come from programs, not browsers: no XSRF check."""


def make_application(method_module, path='/', compression=None, serialization=None,
                     debug=False):
    """Return a Tornado application that serves ``method_module`` on ``path``.

    ``method_module`` is a module or its dotted name; ``compression`` and
    ``serialization`` are modules (or names) that must match the clients'.
    """
    if isinstance(method_module, six.string_types):
        method_module = importlib.import_module(method_module)
    settings = dict(method_module=method_module, compression=load_module(compression),
                    serialization=load_module(serialization), debug=debug)
    route = '^' + re.escape(path.rstrip('/')) + '/?$'
    return web.Application([(route, TotoHTTPWorkerHandler, settings)])


def server_settings():
    """HTTPServer keyword arguments from the TLS and size options."""
    settings = {}
    if options.max_message_size and options.max_message_size > 0:
        settings['max_body_size'] = options.max_message_size
    if options.http_worker_certfile:
        settings['ssl_options'] = {'certfile': options.http_worker_certfile,
                                   'keyfile': options.http_worker_keyfile or None}
    return settings


class TotoHTTPWorkerService(TotoService):
    """Run ``--processes`` HTTP worker processes sharing one listening port.

    Options: ``method_module``, ``http_worker_host``, ``http_worker_port``,
    ``http_worker_path``, ``http_worker_certfile``, ``http_worker_keyfile``,
    ``max_message_size``, ``compression_module``, ``serialization_module``,
    ``startup_function`` (called with ``worker=None`` in each process:
    there is no per-process worker object), ``debug`` and the process and
    daemon options of :class:`~toto.service.TotoService`.
    """

    def prepare(self):
        importlib.import_module(options.method_module)
        warn_once_if_exposed('the HTTP worker', options.http_worker_host or '*',
                             options.serialization_module, False,
                             advice='put it behind a proxy that authenticates clients')
        # Bound once in the parent: the processes share the socket and the
        # kernel spreads connections over them.
        self.sockets = bind_sockets(options.http_worker_port, options.http_worker_host or None)
        self.port = self.sockets[0].getsockname()[1]
        logger.info('HTTP worker listening on %s://%s:%d%s',
                    'https' if options.http_worker_certfile else 'http',
                    options.http_worker_host or '*', self.port, options.http_worker_path)

    def main_loop(self):
        if options.startup_function:
            call_startup_function(options.startup_function, None)
        loop = IOLoop(make_current=False)
        # Start serving from inside the loop so the server binds to it on
        # every Tornado version.
        loop.add_callback(self._serve)
        loop.start()

    def _serve(self):
        application = make_application(options.method_module, options.http_worker_path,
                                       compression=options.compression_module or None,
                                       serialization=options.serialization_module or None,
                                       debug=options.debug)
        server = HTTPServer(application, **server_settings())
        server.add_sockets(self.sockets)


__all__ = ['TotoHTTPWorkerHandler', 'TotoHTTPWorkerService', 'make_application']
