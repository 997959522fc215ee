"""Tell whether a module is imported in this worker process."""

import sys


def invoke(worker, parameters):
    return parameters['module'] in sys.modules
