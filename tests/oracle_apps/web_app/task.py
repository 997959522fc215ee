"""A ``@coroutine`` method yielding work done on a TaskQueue thread (``yield_task``)."""

from toto.invocation import *

QUEUE_NAME = 'web_app'


def _square(n):
    return n * n


@coroutine
def invoke(handler, parameters):
    value = yield TaskQueue.instance(QUEUE_NAME).yield_task(_square, int(parameters['n']))
    raise Return({'square': value})
