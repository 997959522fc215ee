"""``nap``: wait ``seconds`` as a coroutine, leaving the worker process free."""

from tornado import gen


@gen.coroutine
def invoke(worker, parameters):
    yield gen.sleep(float(parameters.get('seconds', 0.01)))
    raise gen.Return({'napped': True})
