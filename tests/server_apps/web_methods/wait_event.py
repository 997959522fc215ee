"""A long poll, as the chat template's receive_message: answer with the next 'message' event.

It leaves the note ``waiting-<pid>-<tag>`` once it waits, so the test knows where.
"""

import os

from side_channel import leave_note
from toto.invocation import *  # noqa: F401


@asynchronous
def invoke(handler, parameters):
    def receive(message):
        handler.respond(result={'message': message, 'pid': os.getpid()})
    handler.register_event_handler('message', receive, deregister_on_finish=True)
    leave_note('waiting-%d-%s' % (os.getpid(), parameters.get('tag', 0)))
