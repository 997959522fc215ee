"""An event_init_module: every 'message' event leaves the note ``event-<pid>-<message>``."""

import os

from side_channel import leave_note


def invoke(event_manager):
    def note(message):
        leave_note('event-%d-%s' % (os.getpid(), message))
    event_manager.register_handler('message', note, persist=True)
