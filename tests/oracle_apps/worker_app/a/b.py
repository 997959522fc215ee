"""A method in a nested module, called as ``a.b``."""

from toto.invocation import *


def invoke(handler, parameters):
    return {'module': __name__, 'parameters': parameters}
