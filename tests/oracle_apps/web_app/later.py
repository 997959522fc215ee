"""``@asynchronous``: answers from another thread once ``invoke`` has returned."""

import threading

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    def answer():
        handler.respond(result={'later': parameters})
    threading.Timer(0.02, answer).start()
