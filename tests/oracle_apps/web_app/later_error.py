"""``@asynchronous``: answers an error from another thread."""

import threading

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    def answer():
        handler.respond(error=TotoException(4243, 'too late'))
    threading.Timer(0.02, answer).start()
