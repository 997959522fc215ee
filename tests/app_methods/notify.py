from toto.events import EventManager
from toto.invocation import *


def invoke(handler, parameters):
    """Send an event to the --remote_event_receivers, as 1.0.12 worker methods could."""
    return {'sent_to': EventManager.instance().send('app.notified', parameters)}
