"""``pause``: wait ``seconds`` with ``time.sleep``, holding the worker process."""

import time


def invoke(worker, parameters):
    time.sleep(float(parameters.get('seconds', 0.01)))
    return {'paused': True}
