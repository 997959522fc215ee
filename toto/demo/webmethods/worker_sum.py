"""``worker_sum``: the web method hands the sum to a worker (``arith.add``) and waits for it.

The worker connection is the one the options configure (``--worker_address``,
``--worker_transport``), as 1.0.12 apps get it.
"""

from toto.invocation import Return, coroutine
from toto.workerconnection import WorkerConnection


@coroutine
def invoke(handler, parameters):
    answer = yield WorkerConnection.instance().invoke(
        'arith.add', {'numbers': parameters.get('numbers', [])}, await_=True)
    raise Return({'sum': answer['sum'], 'via': 'worker'})
