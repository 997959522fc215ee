from toto.invocation import *


@default_parameters({'a': 1, 'b': 2})
def invoke(handler, parameters):
    return parameters
