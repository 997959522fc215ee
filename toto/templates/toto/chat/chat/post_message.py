"""post_message: send "message" to everyone waiting in receive_message, in every process."""

from toto.events import EventManager
from toto.invocation import requires


@requires('message')
def invoke(handler, parameters):
    EventManager.instance().send('message', parameters['message'])
    return 'message sent!'
