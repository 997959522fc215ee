"""Answer the parameter ``value`` (0, false, "" ...): falsy results are still sent."""

from toto.invocation import *


def invoke(handler, parameters):
    return parameters.get('value')
