"""``@jsonp`` (bare): with a ``jsonp`` parameter the answer is ``cb(json)``."""

from toto.invocation import *


@jsonp
def invoke(handler, parameters):
    return parameters
