"""A coroutine method: waits ``seconds`` on the IOLoop, then answers, or raises if asked."""

import os

from tornado import gen

from toto.invocation import *  # noqa: F403 - brings TotoException


@gen.coroutine
def invoke(worker, parameters):
    yield gen.sleep(parameters.get('seconds', 0.01))
    if 'fail' in parameters:
        raise TotoException(4343, parameters['fail'])  # noqa: F405
    raise gen.Return({'waited': parameters.get('seconds', 0.01), 'n': parameters.get('n'),
                      'pid': os.getpid()})
