from toto.invocation import *


def invoke(handler, parameters):
    return {'sub': parameters}
