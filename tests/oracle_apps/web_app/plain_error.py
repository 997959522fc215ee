"""Fail with an exception that is not a TotoException (answered as code 1000)."""

from toto.invocation import *


def invoke(handler, parameters):
    raise ValueError('the kettle is %s' % parameters.get('state', 'empty'))
