"""A @coroutine method: waits a little on the IOLoop, then answers (or raises)."""
from tornado import gen

from toto.invocation import *


@coroutine
def invoke(handler, parameters):
    yield gen.sleep(parameters.get('delay', 0.01))
    if parameters.get('fail'):
        raise TotoException(4545, 'coroutine failed')
    raise Return({'slept': True})
