"""``@jsonp('callback')``: the callback's parameter name chosen by the method."""

from toto.invocation import *


@jsonp('callback')
def invoke(handler, parameters):
    return {'answer': 42}
