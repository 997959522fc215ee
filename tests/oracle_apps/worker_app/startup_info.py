"""What the startup function recorded when the worker started."""

from toto.invocation import *


def invoke(handler, parameters):
    return getattr(handler, 'startup_record', None)
