"""@asynchronous that answers twice from a thread (the second answer is dropped)."""
import threading

from toto.invocation import *

from web_methods import _state


@asynchronous
def invoke(handler, parameters):
    def answer():
        handler.respond(result='first')
        handler.respond(result='second')
        _state.record('twice.done', True)
    thread = threading.Thread(target=answer)
    thread.daemon = True
    thread.start()
