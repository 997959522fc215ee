"""``greet``: an ordinary method, answered with its return value.

``parameters`` is ``{'name': ...}``; the answer is ``{'greeting': ...}``.  A
missing or empty name raises a TotoException, which the caller receives as
the answer ``{'error': {'code': 1003, 'value': 'name is required'}}``.
"""

from toto.invocation import *


def invoke(worker, parameters):
    name = parameters.get('name')
    if not name:
        raise TotoException(ERROR_MISSING_PARAMS, 'name is required')
    return {'greeting': u'Hello, %s!' % name}
