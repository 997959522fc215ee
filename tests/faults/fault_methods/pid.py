"""Answer the worker's process id."""

import os


def invoke(worker, parameters):
    return {'pid': os.getpid()}
