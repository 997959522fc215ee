import os


def invoke(handler, parameters):
    return {'pid': os.getpid()}
