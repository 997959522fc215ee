"""A long poll, as the chat template's receive_message: answer with the next 'message' event."""

import os

from side_channel import leave_note
from toto.invocation import *  # noqa: F401


@asynchronous
def invoke(handler, parameters):
    def receive(message):
        handler.respond(result={'message': message, 'pid': os.getpid()})
    handler.register_event_handler('message', receive, deregister_on_finish=True)
    leave_note('waiting-%d' % os.getpid())
