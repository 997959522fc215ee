"""Answer None: 1.0.12 sends a 200 with an empty body."""

from toto.invocation import *


def invoke(handler, parameters):
    return None
