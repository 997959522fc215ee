"""@authenticated_with_parameter: the session named by the session_id parameter."""
from toto.invocation import *


@authenticated_with_parameter
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id, 'parameters': parameters}
