"""Fail with a TotoException carrying the code and value the caller asks for."""

from toto.invocation import *  # noqa: F403 - brings TotoException


def invoke(worker, parameters):
    raise TotoException(parameters.get('code', 4242), parameters.get('value', 'x'))  # noqa: F405
