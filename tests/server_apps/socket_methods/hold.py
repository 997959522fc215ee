"""An asynchronous method that never answers (counts against the pending cap)."""

from toto.invocation import *  # noqa: F401


@asynchronous
def invoke(handler, parameters):
    return None
