"""Answer with the parameters as they arrived."""

from toto.invocation import *


def invoke(handler, parameters):
    return parameters
