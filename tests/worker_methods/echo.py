"""Answer the parameters unchanged."""

from toto.invocation import *  # noqa: F403 - what method modules traditionally do


def invoke(worker, parameters):
    return parameters
