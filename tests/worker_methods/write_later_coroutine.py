"""An asynchronous coroutine method: acknowledged first, then it waits and writes a file.

If the coroutine fails (``fail`` in the parameters), the worker logs the failure and
carries on; the caller has its acknowledgement already.
"""

import os

from tornado import gen

from toto.invocation import asynchronous


@asynchronous
@gen.coroutine
def invoke(worker, parameters):
    yield gen.sleep(0.05)
    if parameters.get('fail'):
        raise ValueError('failed after the acknowledgement')
    output = parameters['output']
    with open(output + '.tmp', 'w') as stream:
        stream.write('written by a coroutine in %d' % os.getpid())
    os.rename(output + '.tmp', output)
