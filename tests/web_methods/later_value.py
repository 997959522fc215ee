"""@asynchronous that returns its answer at once (answered at once, as in 1.0.12)."""
from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    return {'now': True, 'async': getattr(handler, 'async')}
