"""What ``later`` was called with, in order."""

from toto.invocation import *

from . import later


def invoke(handler, parameters):
    return {'received': later.RECEIVED}
