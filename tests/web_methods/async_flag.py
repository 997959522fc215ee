"""@asynchronous: a thread reports handler.async after invoke returned."""
import threading

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    during = getattr(handler, 'async')

    def answer():
        handler.respond(result={'during_invoke': during, 'after_invoke': getattr(handler, 'async')})
    timer = threading.Timer(0.05, answer)
    timer.daemon = True
    timer.start()
