"""A coroutine method: its Future's value is the answer."""

from tornado import gen

from toto.invocation import *  # noqa: F401


@gen.coroutine
def invoke(handler, parameters):
    yield gen.sleep(0.01)
    raise gen.Return({'coroutine': parameters})
