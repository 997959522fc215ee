"""A ``@coroutine`` method that fails after a yield: its TotoException is answered."""

from tornado import gen

from toto.invocation import *


@coroutine
def invoke(handler, parameters):
    yield gen.moment
    raise TotoException(4244, 'coroutine failed')
