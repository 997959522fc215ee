"""``arith.add``: the sum of ``parameters['numbers']``."""

from toto.invocation import ERROR_MISSING_PARAMS, TotoException


def invoke(worker, parameters):
    if 'numbers' not in parameters:
        raise TotoException(ERROR_MISSING_PARAMS, 'numbers is required')
    return {'sum': sum(parameters['numbers'])}
