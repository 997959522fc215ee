"""``@default_parameters``: missing keys are filled in, given ones win."""

from toto.invocation import *


@default_parameters({'size': 1, 'colour': 'green'})
def invoke(handler, parameters):
    return parameters
