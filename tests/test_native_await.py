"""Native ``async def`` / ``await`` callers (Python 3 only; conftest skips it on 2.7)."""

import asyncio
import os

import pytest
from tornado.httpclient import AsyncHTTPClient

from support import wait_until


def test_native_await_with_await_underscore_on_zmq(zmq_conn, io_loop):
    async def call():
        return await zmq_conn.invoke('echo', {'a': 1}, await_=True)

    assert io_loop.run_sync(call, timeout=5) == {'a': 1}


def test_native_await_with_the_await_keyword_on_zmq(zmq_conn, io_loop):
    async def call():
        return await zmq_conn.invoke('echo', {'b': 2}, **{'await': True})

    assert io_loop.run_sync(call, timeout=5) == {'b': 2}


def test_native_await_attribute_style_on_zmq(zmq_worker, zmq_conn, io_loop):
    async def call():
        return await zmq_conn.accounts.echo({'c': 3}, await_=True)

    assert io_loop.run_sync(call, timeout=5) == {'c': 3}
    assert zmq_worker.calls[0]['method'] == 'accounts.echo'


def test_native_await_gets_the_timeout_result_on_zmq(zmq_worker, make_zmq_conn, io_loop):
    conn = make_zmq_conn(zmq_worker.address, timeout=0.2)

    async def call():
        return await conn.invoke('sleep', {'seconds': 3}, await_=True)

    assert io_loop.run_sync(call, timeout=5) == {'error': 'timeout'}


def test_zmq_calls_gathered_under_plain_asyncio_run(zmq_conn):
    async def main():
        return await asyncio.gather(*[zmq_conn.invoke('echo', {'i': i}, await_=True)
                                      for i in range(10)])

    assert asyncio.run(main()) == [{'i': i} for i in range(10)]


def test_native_await_on_http(http_worker, io_loop):
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection(http_worker.address, timeout=5.0)

    async def call():
        first = await conn.invoke('echo', {'d': 4})
        second = await conn.invoke('echo', {'e': 5}, await_=True)
        third = await conn.test.whoami()
        return first, second, third

    assert io_loop.run_sync(call, timeout=10) == ({'d': 4}, {'e': 5}, http_worker.worker_id)


def test_native_await_on_http_raises_toto_exception_on_timeout(http_worker, io_loop):
    from toto.exceptions import TotoException
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection(http_worker.address, timeout=0.2)

    async def call():
        with pytest.raises(TotoException) as caught:
            await conn.invoke('sleep', {'seconds': 3})
        return caught.value

    error = io_loop.run_sync(call, timeout=10)
    assert (error.code, error.value) == (-1, 'Timeout')


def test_http_calls_gathered_under_plain_asyncio_run(http_workers):
    from toto.httpworkerconnection import HTTPWorkerConnection
    conn = HTTPWorkerConnection([worker.address for worker in http_workers], timeout=5.0)

    async def main():
        try:
            return await asyncio.gather(*[conn.invoke('whoami') for _ in range(6)])
        finally:
            AsyncHTTPClient().close()

    assert sorted(asyncio.run(main())) == ['http-0', 'http-0', 'http-1', 'http-1',
                                           'http-2', 'http-2']


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='needs /proc/self/fd')
def test_close_releases_descriptors_of_asyncio_run_loops(zmq_worker):
    from toto.zmqworkerconnection import ZMQWorkerConnection

    def descriptors():
        return len(os.listdir('/proc/self/fd'))

    warm_up = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)
    assert warm_up.invoke('echo', {}, await_=True).result(5) == {}
    warm_up.close()
    baseline = descriptors()

    conn = ZMQWorkerConnection(zmq_worker.address, timeout=5.0)

    async def main(index):
        return await conn.invoke('echo', {'i': index}, await_=True)

    for index in range(10):
        assert asyncio.run(main(index)) == {'i': index}
    conn.close()
    wait_until(lambda: descriptors() <= baseline, timeout=2.0,
               message=lambda: 'descriptors left open: %d' % (descriptors() - baseline))
