"""Raises a TotoException (code given) or, without a code, a ValueError."""
from toto.invocation import *


def invoke(handler, parameters):
    if 'code' in parameters:
        raise TotoException(parameters['code'], parameters.get('value', 'failed'))
    raise ValueError(parameters.get('value', 'plain failure'))
