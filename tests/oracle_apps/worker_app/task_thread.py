"""A plain method that hands work to a TaskQueue thread and waits for it (``add_task``)."""

import threading

from toto.invocation import *

QUEUE_NAME = 'worker_app'


def invoke(handler, parameters):
    done = threading.Event()
    result = {}

    def work():
        result['square'] = parameters['n'] * parameters['n']
        result['on_a_queue_thread'] = threading.current_thread().name.startswith(QUEUE_NAME)
        done.set()
    TaskQueue.instance(QUEUE_NAME).add_task(work)
    if not done.wait(10):
        raise TotoException(ERROR_SERVER, 'the task queue did not run the task')
    return result
