"""Answer after ``parameters['seconds']``; ``parameters['done']`` tells when it returns."""

import os
import time

from fault_methods._files import write_atomically


def invoke(worker, parameters):
    time.sleep(parameters['seconds'])
    if parameters.get('done'):
        write_atomically(parameters['done'], str(os.getpid()))
    return {'pid': os.getpid(), 'late': True}
