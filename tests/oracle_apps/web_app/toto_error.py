"""Fail with a TotoException of the application's own code."""

from toto.invocation import *

ERROR_OUT_OF_STOCK = 4242


def invoke(handler, parameters):
    raise TotoException(ERROR_OUT_OF_STOCK, 'Out of stock: %s' % parameters.get('item', 'tea'))
