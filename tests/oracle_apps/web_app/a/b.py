"""A method in a nested module."""

from toto.invocation import *


def invoke(handler, parameters):
    return {'module': __name__, 'parameters': parameters}
