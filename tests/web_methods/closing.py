"""@asynchronous that never answers; records on_connection_close(handler)."""
from toto.invocation import *

from web_methods import _state


@asynchronous
def invoke(handler, parameters):
    _state.record('closing.invoked', parameters.get('tag'))


def on_connection_close(handler):
    _state.record('closing.closed', handler.body and handler.body.get('parameters', {}).get('tag'))
