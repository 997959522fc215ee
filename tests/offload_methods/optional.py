"""@optionally_authenticated: who, if anyone."""
from toto.invocation import *


@optionally_authenticated
@requires('x')
def invoke(handler, parameters):
    session = handler.session
    return {'user_id': session.user_id if session else None, 'x': parameters['x']}
