"""How many times ``on_close``'s ``on_connection_close`` ran."""

from toto.invocation import *

from . import on_close


def invoke(handler, parameters):
    return {'closed': len(on_close.CLOSED)}
