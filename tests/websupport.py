"""A real Toto web server for the handler tests, and a plain HTTP client for it.

``WebServer`` runs a tornado ``HTTPServer`` on 127.0.0.1:<free port>, on its
own IOLoop thread, with an ``Application`` that routes ``/api`` to a
``TotoHandler`` subclass configured from the options given (set only while
``configure()`` reads them, then restored)::

    with WebServer(method_module='web_methods', hmac_enabled=True) as server:
        answer = server.post('/api/echo', {'a': 1})
        assert answer.json == {'result': {'a': 1}}

``answer`` is a :class:`Response`: status, the raw header list (duplicates
kept: Toto answers carry two Content-Type headers), body bytes, ``json``.
The client is ``http.client`` (``httplib`` on Python 2), one connection per
request unless a :class:`Connection` is used.
"""

import json
import os
import shutil
import tempfile
import threading

import six
from six.moves import http_client
from tornado import gen, netutil, web
from tornado.httpserver import HTTPServer
from tornado.options import options

from support import DEFAULT_WAIT, LoopThread

import toto._server_options  # noqa: F401 - defines the options
from toto.handler import TotoHandler

ROOT = '/api'
ROUTE = ROOT + r'/?([^/]?[\w\./]*)'
_handler_classes = [0]


class Response(object):
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers     # [(name, value)] in the order received
        self.body = body

    def header_values(self, name):
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def header(self, name):
        values = self.header_values(name)
        return values[-1] if values else None

    @property
    def json(self):
        return json.loads(self.body.decode('utf-8'))

    @property
    def text(self):
        return self.body.decode('utf-8')

    def __repr__(self):
        return '<Response %d %r>' % (self.status, self.body[:200])


def _raw_headers(response):
    if six.PY2:
        pairs = []
        for line in response.msg.headers:
            name, _, value = line.partition(':')
            pairs.append((name.strip(), value.strip()))
        return pairs
    return list(response.msg.items())


class Connection(object):
    """One keep-alive connection for several requests."""

    def __init__(self, port, timeout=DEFAULT_WAIT):
        self._connection = http_client.HTTPConnection('127.0.0.1', port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if isinstance(body, six.text_type):
            body = body.encode('utf-8')
        self._connection.request(method, path, body, headers)
        response = self._connection.getresponse()
        data = response.read()
        return Response(response.status, response.reason, _raw_headers(response), data)

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def json_body(document):
    return json.dumps(document).encode('utf-8')


class WebServer(object):
    """Context manager: a TotoHandler behind a real HTTPServer on a free loopback port.

    ``option_values`` are set while the handler class is configured.
    ``db_connection`` is what handlers get (default: a FakeConnection).
    ``hooks`` maps setter names (``set_before_handler``...) to functions.
    ``settings`` go to the tornado ``Application`` (cookie_secret...), ``server_settings``
    to the ``HTTPServer`` (xheaders...).
    """

    def __init__(self, db_connection=None, hooks=None, settings=None, server_settings=None,
                 **option_values):
        option_values.setdefault('method_module', 'web_methods')
        self.server_settings = server_settings or {}
        self.option_values = option_values
        self.db_connection = db_connection
        self.hooks = hooks or {}
        self.app_settings = settings or {}
        self.port = None
        self.handler_class = None
        self._loop_thread = None
        self._server = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self):
        if self.db_connection is None:
            from toto.fakeconnection import FakeConnection
            self.db_connection = FakeConnection()
        _handler_classes[0] += 1
        self.handler_class = type('TestTotoHandler%d' % _handler_classes[0], (TotoHandler,), {})
        with configured_options(**self.option_values):
            self.settings = self.handler_class.configure()
        for setter, function in self.hooks.items():
            getattr(self.handler_class, setter)(function)
        self._loop_thread = LoopThread(name='toto-web-server')
        self._loop_thread.run(self._listen)
        return self

    def _listen(self):
        sockets = netutil.bind_sockets(0, '127.0.0.1')
        self.port = sockets[0].getsockname()[1]
        app = web.Application([(ROUTE, self.handler_class,
                                {'db_connection': self.db_connection})],
                              log_function=lambda handler: None, **self.app_settings)
        self._server = HTTPServer(app, **self.server_settings)
        self._server.add_sockets(sockets)

    @gen.coroutine
    def _shutdown(self):
        self._server.stop()
        yield self._server.close_all_connections()

    def stop(self):
        if self._loop_thread is not None:
            try:
                self._loop_thread.run(self._shutdown)
            finally:
                self._loop_thread.stop()
                self._loop_thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def io_loop(self):
        return self._loop_thread.io_loop

    def run_on_loop(self, function):
        return self._loop_thread.run(function)

    # -- client -------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=DEFAULT_WAIT):
        with Connection(self.port, timeout) as connection:
            return connection.request(method, path, body, headers)

    def post(self, path, document=None, headers=None, raw=None, content_type=None,
             timeout=DEFAULT_WAIT):
        """POST ``document`` as JSON (or ``raw`` bytes with ``content_type``)."""
        headers = dict(headers or {})
        body = raw if raw is not None else json_body(document)
        if content_type is not None:
            headers['Content-Type'] = content_type
        elif raw is None:
            headers.setdefault('Content-Type', 'application/json')
        return self.request('POST', path, body, headers, timeout)

    def call(self, method, parameters=None, headers=None, path=ROOT):
        """POST ``{"method": method, "parameters": parameters}`` to the root."""
        return self.post(path, {'method': method, 'parameters': parameters or {}}, headers)

    def get(self, path, headers=None, timeout=DEFAULT_WAIT):
        return self.request('GET', path, None, headers, timeout)

    def connection(self):
        return Connection(self.port)


class configured_options(object):
    """Set tornado options for a block, and put the old values back after it."""

    def __init__(self, **values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = getattr(options, name)
            setattr(options, name, value)
        return options

    def __exit__(self, *exc_info):
        for name, value in self.saved.items():
            setattr(options, name, value)


class TemporaryDirectory(object):
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix='toto-web-')
        return self.path

    def __exit__(self, *exc_info):
        shutil.rmtree(self.path, ignore_errors=True)


def json_connection(directory, **session_settings):
    """A ``--database=json`` connection (as the server makes it) on a file in ``directory``."""
    import toto.dbconnection as dbconnection
    values = {'database': 'json', 'db_host': os.path.join(directory, 'store.json'),
              'db_port': 1}
    values.update(session_settings)
    with configured_options(**values):
        return dbconnection.configured_connection()


class ThreadResult(object):
    """Run ``function`` on a new thread; ``wait()`` gives its value or raises its error."""

    def __init__(self, function, *args):
        self._done = threading.Event()
        self._value = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(function, args))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, function, args):
        try:
            self._value = function(*args)
        except Exception as error:  # handed to the waiting thread
            self._error = error
        finally:
            self._done.set()

    def wait(self, timeout=DEFAULT_WAIT):
        if not self._done.wait(timeout):
            raise AssertionError('the thread did not finish within %.1f s' % timeout)
        if self._error is not None:
            raise self._error
        return self._value
