"""HTTPWorkerConnection.configure_client(): which HTTP client carries the calls.

The worker here is toto's own HTTP worker application on a server that counts the TCP
connections it accepts, so keep-alive shows as fewer connections than calls.
"""

import pytest
from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

try:
    import pycurl  # noqa: F401 - only to know whether the curl client can run
except ImportError:
    pycurl = None

CALLS = 12


class CountingServer(HTTPServer):
    """An HTTPServer that counts the connections it accepted."""

    connections = 0

    def handle_stream(self, stream, address):
        CountingServer.connections += 1
        return HTTPServer.handle_stream(self, stream, address)


@pytest.fixture
def counting_worker(io_loop):
    from toto.httpworker import make_application
    CountingServer.connections = 0
    sockets = bind_sockets(0, '127.0.0.1')
    holder = {}

    def listen():
        holder['server'] = CountingServer(make_application('toto.demo.methods'))
        holder['server'].add_sockets(sockets)

    io_loop.run_sync(listen)
    yield 'http://127.0.0.1:%d/' % sockets[0].getsockname()[1]
    io_loop.run_sync(lambda: holder['server'].stop())


def call_many(io_loop, conn):
    @gen.coroutine
    def calls():
        results = []
        for index in range(CALLS):
            result = yield conn.invoke('arith.add', {'numbers': [index, 1]})
            results.append(result['sum'])
        raise gen.Return(results)

    return io_loop.run_sync(calls, timeout=20)


@pytest.mark.parametrize('kind', ['default', 'simple'])
def test_default_and_simple_clients_open_a_connection_per_call(kind, counting_worker,
                                                               io_loop):
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection(counting_worker, timeout=5.0)
    conn.configure_client(kind)
    try:
        assert call_many(io_loop, conn) == [index + 1 for index in range(CALLS)]
    finally:
        conn.close()
    assert CountingServer.connections == CALLS


@pytest.mark.skipif(pycurl is None, reason='pycurl is not installed')
def test_curl_client_keeps_the_connection_open_between_calls(counting_worker, io_loop):
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection(counting_worker, timeout=5.0)
    conn.configure_client('curl', max_clients=4)
    try:
        assert call_many(io_loop, conn) == [index + 1 for index in range(CALLS)]
    finally:
        conn.close()
    assert CountingServer.connections == 1


def test_own_client_leaves_the_application_client_alone(counting_worker, io_loop):
    from tornado.httpclient import AsyncHTTPClient

    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection(counting_worker, timeout=5.0)
    conn.configure_client('simple', max_clients=3)
    try:
        call_many(io_loop, conn)
        own = io_loop.run_sync(gen.coroutine(lambda: conn._client()))
        shared = io_loop.run_sync(gen.coroutine(lambda: AsyncHTTPClient()))
        assert own is not shared
        assert own.max_clients == 3
    finally:
        conn.close()


def test_unknown_client_kind_is_refused():
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection('http://127.0.0.1:1/')
    with pytest.raises(ValueError):
        conn.configure_client('wget')
    with pytest.raises(ValueError):
        conn.configure_client('default', max_clients=5)


def test_worker_http_client_option_reaches_the_shared_instance(worker_options,
                                                               counting_worker, io_loop):
    from tornado.options import parse_command_line
    from tornado.simple_httpclient import SimpleAsyncHTTPClient

    from toto.workerconnection import WorkerConnection
    parse_command_line(['toto-test', '--worker_transport=http',
                        '--worker_address=' + counting_worker,
                        '--worker_http_client=simple', '--worker_http_max_clients=7'])
    conn = WorkerConnection.instance()
    assert call_many(io_loop, conn)[-1] == CALLS
    client = io_loop.run_sync(gen.coroutine(lambda: conn._client()))
    assert isinstance(client, SimpleAsyncHTTPClient)
    assert client.max_clients == 7
