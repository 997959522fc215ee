"""An asynchronous method answered from another thread."""

import threading

from toto.invocation import *  # noqa: F401


@asynchronous
def invoke(handler, parameters):
    timer = threading.Timer(0.05, handler.respond, kwargs={'result': {'later': parameters}})
    timer.start()
