"""An ``@asynchronous`` method: the caller gets the acknowledgement (None) at once.

It keeps what it was called with, for ``later_log`` to tell.
"""

from toto.invocation import *

RECEIVED = []


@asynchronous
def invoke(handler, parameters):
    RECEIVED.append(parameters)
