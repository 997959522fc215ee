"""``@authenticated_with_parameter``: the session id comes as the parameter ``session_id``."""

from toto.invocation import *


@authenticated_with_parameter
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id, 'rest': parameters}
