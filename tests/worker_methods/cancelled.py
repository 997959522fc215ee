"""Return a Future that is cancelled before it resolves (Python 3: asyncio's Future)."""

from tornado.concurrent import Future
from tornado.ioloop import IOLoop


def invoke(worker, parameters):
    future = Future()
    IOLoop.current().call_later(0.01, future.cancel)
    return future
