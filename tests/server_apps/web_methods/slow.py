"""Answer after ``seconds`` (an asynchronous method), leaving a note while it waits."""

import os

from tornado.ioloop import IOLoop

from side_channel import leave_note
from toto.invocation import *  # noqa: F401


@asynchronous
def invoke(handler, parameters):
    seconds = float(parameters.get('seconds', 1))
    leave_note('slow-%d' % os.getpid())

    def answer():
        handler.respond(result={'slept': seconds, 'pid': os.getpid()})
    IOLoop.current().call_later(seconds, answer)
