"""``burn``: about 2 ms of pure Python work (a fixed amount, not a fixed time).

The amount is fixed on purpose: a method that spins until 2 ms of wall time
have passed would seem to scale with any number of processes, because time
passes while a process waits for a core.  It answers with its process id so
the benchmark can check that every worker process takes calls.
"""

import os

#: Loop iterations for about 2 ms on this machine's Python 3.11.
DEFAULT_ITERATIONS = 35000


def invoke(worker, parameters):
    iterations = int(parameters.get('iterations', DEFAULT_ITERATIONS))
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return {'pid': os.getpid(), 'total': total}
