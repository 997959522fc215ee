"""@asynchronous that calls respond() before invoke returns."""
from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    handler.respond(result='inside')
