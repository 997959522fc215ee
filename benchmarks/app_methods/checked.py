from toto.invocation import *


@requires('n')
@default_parameters({'scale': 2})
def invoke(handler, parameters):
    return {'n': parameters['n'] * parameters['scale']}
