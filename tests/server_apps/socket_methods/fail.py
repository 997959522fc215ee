from toto.invocation import *  # noqa: F401


def invoke(handler, parameters):
    if parameters.get('toto'):
        raise TotoException(ERROR_NOT_AUTHORIZED, 'Not authorized')
    raise ValueError('broken on purpose')
