"""@jsonp('callback') under @requires: the callback parameter is named callback."""
from toto.invocation import *


@requires('x')
@jsonp('callback')
def invoke(handler, parameters):
    return {'x': parameters['x']}
