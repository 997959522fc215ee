"""Send the 'message' event to every process, as the chat template's post_message.

With ``unless_pid``, a process of that pid sends nothing (and says so): the test
uses it to make sure the event comes from another process than the long poll's.
"""

import os

from toto.events import EventManager
from toto.invocation import *  # noqa: F401


@requires('message')
def invoke(handler, parameters):
    if parameters.get('unless_pid') == os.getpid():
        return {'sent': False, 'pid': os.getpid()}
    EventManager.instance().send('message', parameters['message'])
    return {'sent': True, 'pid': os.getpid()}
