"""A coroutine method that counts how many of its calls run at once in this process.

Each call waits until ``expect`` calls have run side by side (or ``wait``
seconds passed), and answers with the most that ran at once.
"""

import os
import time

from tornado import gen

_running = [0]
_most = [0]


@gen.coroutine
def invoke(worker, parameters):
    _running[0] += 1
    _most[0] = max(_most[0], _running[0])
    try:
        deadline = time.time() + parameters.get('wait', 2.0)
        # The most seen, not those running now: the first call to finish
        # leaves fewer running for the rest.
        while _most[0] < parameters['expect'] and time.time() < deadline:
            yield gen.sleep(0.005)
        raise gen.Return({'most_at_once': _most[0], 'pid': os.getpid()})
    finally:
        _running[0] -= 1
