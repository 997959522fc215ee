"""``@asynchronous`` that returns its value at once: answered like a plain method."""

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    return {'at_once': True}
