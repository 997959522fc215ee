"""@error_redirect: code 4242 goes to /moved, anything else to the default only if asked."""
from toto.invocation import *


@error_redirect({'4242': '/moved'})
def invoke(handler, parameters):
    raise TotoException(parameters.get('code', 4242), 'redirect me')
