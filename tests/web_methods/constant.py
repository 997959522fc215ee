"""Returns parameters['value'] (so None, 0, False and '' can be tried)."""
from toto.invocation import *


def invoke(handler, parameters):
    return parameters.get('value')
