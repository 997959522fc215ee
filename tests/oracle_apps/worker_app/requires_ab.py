"""Add ``a`` and ``b``; ``@requires`` refuses a call without them (1003)."""

from toto.invocation import *


@requires('a', 'b')
def invoke(handler, parameters):
    return {'sum': parameters['a'] + parameters['b']}
