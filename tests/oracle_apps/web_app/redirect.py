"""``@error_redirect``: TotoException codes map to redirects, others to the default."""

from toto.invocation import *


@error_redirect({'4242': '/out-of-stock'}, default='/oops')
def invoke(handler, parameters):
    if parameters.get('fail') == 'stock':
        raise TotoException(4242, 'Out of stock')
    if parameters.get('fail') == 'other':
        raise ValueError('something else')
    return {'redirected': False}
