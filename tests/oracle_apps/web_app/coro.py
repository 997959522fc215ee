"""A ``@coroutine`` method: its Future is awaited and its value answered."""

from tornado import gen

from toto.invocation import *


@coroutine
def invoke(handler, parameters):
    yield gen.moment
    raise Return({'coroutine': parameters})
