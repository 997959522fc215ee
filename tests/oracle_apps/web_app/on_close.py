"""``@asynchronous`` that never answers; ``on_connection_close`` notes the client left."""

from toto.invocation import *

CLOSED = []


@asynchronous
def invoke(handler, parameters):
    pass


def on_connection_close(handler):
    CLOSED.append(type(handler).__name__)
