"""@jsonp (parameter jsonp)."""
from toto.invocation import *


@jsonp
def invoke(handler, parameters):
    return {'padded': parameters}
