"""An HTTP worker for the tests: a real Tornado server on a free loopback port.

It runs on its own IOLoop in its own thread (Tornado 5.1 on Python 2.7, Tornado 6 on
Python 3) and answers POSTs whose body is ``compress(dumps({'method', 'parameters'}))``
with ``compress(dumps(result))``, as SPEC section 5 describes for the HTTP worker.

Methods (last dotted component of the method name):

``echo``       200, the parameters
``whoami``     200, this server's id
``sleep``      200 after ``parameters['seconds']``: ``{'slept': s, 'worker': id}``
``slow_once``  waits ``parameters['seconds']`` the first time ``parameters['key']`` is
               seen over all servers sharing ``registry``, answers at once afterwards:
               ``{'attempt': n, 'worker': id}``
``slow_on``    waits ``parameters['seconds']`` on the server whose id is
               ``parameters['slow']``, answers at once on the others: ``{'worker': id}``
``fail``       500, ``{'error': {'code': 4242, 'value': 'x'}}``
``status``     ``parameters['status']`` with body ``dumps(parameters['body'])``
``hangup``     closes the connection without answering (a connection reset)
``hangup_once`` hangs up the first time ``parameters['key']`` is seen (over all servers
               sharing ``registry``), answers ``{'attempt': n, 'worker': id}`` afterwards
``garbage``    200 with bytes no serializer decodes
``redirect``   ``parameters['status']`` with ``Location: parameters['location']`` and the
               encoded string ``'redirected'`` as its body
anything else  404, ``{'error': {'code': 1000, 'value': ...}}``
An undecodable request body gets 400.
"""

import datetime
import threading
import uuid

from support import ERROR_SERVER, GARBAGE, Identity, LoopThread, Pickle, module_or_default
from tornado import gen, locks, netutil, web
from tornado.httpserver import HTTPServer



class KeyRegistry(object):
    """Counts requests per key and remembers which server saw each one first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = {}
        self.first_server = {}

    def attempt(self, key, server):
        with self._lock:
            self._seen[key] = self._seen.get(key, 0) + 1
            self.first_server.setdefault(key, server)
            return self._seen[key]


class _WorkerHandler(web.RequestHandler):

    def initialize(self, worker):
        self.worker = worker
        self.disconnected = False

    def on_connection_close(self):
        self.disconnected = True

    @gen.coroutine
    def post(self):
        worker = self.worker
        try:
            request = worker.loads(self.request.body)
            method = request['method']
            parameters = request['parameters']
        except Exception as exc:
            self._answer(400, worker.error(ERROR_SERVER, str(exc)))
            return
        worker.record(method, parameters, self.request)
        name = method.rsplit('.', 1)[-1]
        if name == 'echo':
            self._answer(200, parameters)
        elif name == 'whoami':
            self._answer(200, worker.worker_id)
        elif name == 'sleep':
            yield worker.pause(parameters['seconds'])
            self._answer(200, {'slept': parameters['seconds'], 'worker': worker.worker_id})
        elif name == 'slow_once':
            attempt = worker.registry.attempt(parameters['key'], worker.worker_id)
            if attempt == 1:
                yield worker.pause(parameters['seconds'])
            self._answer(200, {'attempt': attempt, 'worker': worker.worker_id})
        elif name == 'slow_on':
            if parameters['slow'] == worker.worker_id:
                yield worker.pause(parameters['seconds'])
            self._answer(200, {'worker': worker.worker_id})
        elif name == 'fail':
            self._answer(500, worker.error(4242, 'x'))
        elif name == 'status':
            self._answer(parameters['status'], parameters.get('body'))
        elif name == 'hangup':
            self.request.connection.stream.close()
        elif name == 'hangup_once':
            attempt = worker.registry.attempt(parameters['key'], worker.worker_id)
            if attempt == 1:
                self.request.connection.stream.close()
            else:
                self._answer(200, {'attempt': attempt, 'worker': worker.worker_id})
        elif name == 'garbage':
            self._answer(200, None, raw=GARBAGE)
        elif name == 'redirect':
            self.set_header('Location', parameters['location'])
            self._answer(parameters['status'], 'redirected')
        else:
            self._answer(404, worker.error(
                ERROR_SERVER, "'module' object has no attribute '%s'" % name))

    def _answer(self, status, result, raw=None):
        if self.disconnected:   # the client gave up on us (timed out): nothing to say
            return
        self.set_status(status, reason='Worker Status %d' % status)
        self.set_header('Content-Type', self.request.headers.get('Content-Type',
                                                                 'application/pickle'))
        self.finish(raw if raw is not None else self.worker.dumps(result))


class HTTPTestWorker(object):
    """Context manager: a Tornado HTTP worker listening on 127.0.0.1:<free port>."""

    def __init__(self, serialization=None, compression=None, worker_id=None, registry=None):
        self.serialization = module_or_default(serialization, Pickle)
        self.compression = module_or_default(compression, Identity)
        self.worker_id = worker_id or 'http-%s' % uuid.uuid4().hex[:8]
        self.registry = registry or KeyRegistry()
        self.port = None
        self.address = None
        self.calls = []   # dicts: method, parameters, content_type, path
        self._condition = threading.Condition()
        self._loop_thread = None
        self._server = None
        self._stopping = None

    def start(self):
        self._loop_thread = LoopThread(name='%s-loop' % self.worker_id)
        self._loop_thread.run(self._listen)
        self.address = 'http://127.0.0.1:%d/' % self.port
        return self

    def _listen(self):
        self._stopping = locks.Event()
        sockets = netutil.bind_sockets(0, '127.0.0.1')
        self.port = sockets[0].getsockname()[1]
        app = web.Application([(r'/.*', _WorkerHandler, {'worker': self})],
                              log_function=lambda handler: None)
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)

    @gen.coroutine
    def _shutdown(self):
        self._stopping.set()
        self._server.stop()
        yield self._server.close_all_connections()

    def stop(self):
        if self._loop_thread is None:
            return
        try:
            self._loop_thread.run(self._shutdown)
        finally:
            self._loop_thread.stop()
            self._loop_thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- used by the handler (on the worker's loop) ---------------------------------------

    @gen.coroutine
    def pause(self, seconds):
        """Sleep ``seconds`` on the loop, cut short when the server stops."""
        try:
            yield self._stopping.wait(timeout=datetime.timedelta(seconds=seconds))
        except gen.TimeoutError:
            pass

    def record(self, method, parameters, request):
        with self._condition:
            self.calls.append({'method': method, 'parameters': parameters,
                               'content_type': request.headers.get('Content-Type'),
                               'path': request.path, 'body': request.body})
            self._condition.notify_all()

    def loads(self, body):
        return self.serialization.loads(self.compression.decompress(body))

    def dumps(self, value):
        data = self.serialization.dumps(value)
        if not isinstance(data, bytes):
            data = data.encode('utf-8')
        return self.compression.compress(data)

    @staticmethod
    def error(code, value):
        return {'error': {'code': code, 'value': value}}

    # -- what the tests look at -----------------------------------------------------------

    def calls_of(self, method):
        with self._condition:
            return [call for call in self.calls if call['method'].rsplit('.', 1)[-1] == method]
