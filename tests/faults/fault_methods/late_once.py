"""Slow the first time (``parameters['marker']`` absent, then created), fast afterwards."""

import os
import time

from fault_methods._files import write_atomically


def invoke(worker, parameters):
    if os.path.exists(parameters['marker']):
        return {'pid': os.getpid(), 'late': False}
    write_atomically(parameters['marker'], str(os.getpid()))
    time.sleep(parameters['seconds'])
    if parameters.get('done'):
        write_atomically(parameters['done'], str(os.getpid()))
    return {'pid': os.getpid(), 'late': True}
