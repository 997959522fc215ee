"""Fixtures: real workers on loopback, connections that are closed after each test.

Every worker here is a real server: ``ZMQTestWorker`` (ROUTER -> queue -> DEALER -> REP
threads, see zmqworker.py) and ``HTTPTestWorker`` (a Tornado HTTP server on its own
IOLoop thread, see httpworker.py).  Nothing in the transport is mocked.
"""

import sys

import pytest
from tornado.options import options

from dbfixtures import *  # noqa: F401,F403 -- the database servers (tests/dbfixtures.py)
from httpworker import HTTPTestWorker, KeyRegistry
from support import new_io_loop
from zmqworker import SlowOnceRegistry, ZMQTestWorker

# ``async def`` needs Python 3; ``await=True`` as a literal keyword needs Python < 3.7.
collect_ignore = []
if sys.version_info[0] < 3:
    collect_ignore.append('test_native_await.py')

WORKER_OPTIONS = ('worker_address', 'worker_transport', 'worker_timeout', 'worker_auto_retry',
                  'worker_retry_count', 'worker_compression_module',
                  'worker_serialization_module', 'worker_serialization_mime')


# -- ZeroMQ -----------------------------------------------------------------------------

@pytest.fixture
def zmq_worker():
    """One worker service with two REP worker threads."""
    with ZMQTestWorker() as worker:
        yield worker


@pytest.fixture
def zmq_workers():
    """Three worker services (three addresses, three ids) sharing one slow_once registry."""
    registry = SlowOnceRegistry()
    workers = []
    try:
        for index in range(3):
            workers.append(ZMQTestWorker(worker_id='zmq-%d' % index, registry=registry).start())
        yield workers
    finally:
        for worker in workers:
            worker.stop()


@pytest.fixture
def make_zmq_conn():
    """Factory for ZMQWorkerConnection objects that are closed when the test ends."""
    from toto.zmqworkerconnection import ZMQWorkerConnection
    connections = []

    def make(address, **kwargs):
        kwargs.setdefault('timeout', 5.0)
        connection = ZMQWorkerConnection(address, **kwargs)
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()


@pytest.fixture
def zmq_conn(zmq_worker, make_zmq_conn):
    """A connection to ``zmq_worker`` with a 5 s default timeout."""
    return make_zmq_conn(zmq_worker.address)


# -- HTTP -------------------------------------------------------------------------------

@pytest.fixture
def io_loop():
    """A fresh IOLoop for the test body (drive it with ``io_loop.run_sync``)."""
    loop = new_io_loop()
    yield loop

    def close_http_client():
        from tornado.httpclient import AsyncHTTPClient
        AsyncHTTPClient().close()

    loop.run_sync(close_http_client)
    loop.close(all_fds=True)


@pytest.fixture
def http_worker():
    with HTTPTestWorker() as worker:
        yield worker


@pytest.fixture
def http_workers():
    """Three HTTP servers sharing one slow_once registry (ids http-0, http-1, http-2)."""
    registry = KeyRegistry()
    workers = []
    try:
        for index in range(3):
            workers.append(HTTPTestWorker(worker_id='http-%d' % index, registry=registry).start())
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# -- options and shared instances -------------------------------------------------------

def forget_shared_instances():
    """Drop (and close) the connections ``instance()`` made."""
    import toto.workerconnection as workerconnection
    workerconnection._clear_instances()


@pytest.fixture
def worker_options():
    """Give the test the worker_* options and shared instances, restored afterwards."""
    import toto.workerconnection  # noqa: F401 - defines the options
    # Every worker_ option, including ones added after WORKER_OPTIONS was written.
    names = set(WORKER_OPTIONS) | set(name for name in options.as_dict()
                                      if name.startswith('worker_'))
    saved = dict((name, getattr(options, name)) for name in names)
    forget_shared_instances()
    try:
        yield options
    finally:
        forget_shared_instances()
        for name, value in saved.items():
            setattr(options, name, value)
