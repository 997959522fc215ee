"""@asynchronous long poll: answers with the args of the next event parameters['name']."""
from toto.invocation import *

from web_methods import _state


@asynchronous
def invoke(handler, parameters):
    def arrived(args):
        handler.respond(result={'event': args})
    handler.register_event_handler(parameters['name'], arrived,
                                   deregister_on_finish=bool(parameters.get('deregister')))
    _state.record('wait_event.registered', parameters['name'])
