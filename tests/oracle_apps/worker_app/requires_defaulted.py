"""``@default_parameters`` above ``@requires``: the default counts as given."""

from toto.invocation import *


@default_parameters({'b': 2})
@requires('a', 'b')
def invoke(handler, parameters):
    return {'sum': parameters['a'] + parameters['b']}
