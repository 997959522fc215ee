"""``@requires('a', 'b')``: answers their sum."""

from toto.invocation import *


@requires('a', 'b')
def invoke(handler, parameters):
    return {'sum': parameters['a'] + parameters['b']}
