"""Read a parameter the caller did not send: a KeyError, whose str() is the quoted key."""

from toto.invocation import *


def invoke(handler, parameters):
    return parameters['absent']
