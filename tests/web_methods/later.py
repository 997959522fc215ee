"""@asynchronous: answers from another thread once parameters['delay'] seconds passed."""
import threading

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    def answer():
        if parameters.get('error'):
            handler.respond(error=TotoException(4343, parameters['error']))
        else:
            handler.respond(result={'later': parameters.get('value')})
    timer = threading.Timer(float(parameters.get('delay', 0.05)), answer)
    timer.daemon = True
    timer.start()
