"""Answer with the parameters after ``@default_parameters`` filled in the missing ones."""

from toto.invocation import *


@default_parameters({'page': 1, 'size': 20})
def invoke(handler, parameters):
    return parameters
