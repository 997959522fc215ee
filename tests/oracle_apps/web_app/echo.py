"""Answer with the parameters as they arrived (query, JSON, form or multipart)."""

from toto.invocation import *


def invoke(handler, parameters):
    return parameters
