"""A plain method that holds its worker process until a gate file appears."""

import os
import time


def invoke(worker, parameters):
    gate = parameters['gate']
    deadline = time.time() + parameters.get('wait', 20.0)
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.01)
    return {'pid': os.getpid(), 'gate_opened': os.path.exists(gate)}
