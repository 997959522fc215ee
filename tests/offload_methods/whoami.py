"""@authenticated: the session's user and state."""
from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id, 'session_id': handler.session.session_id,
            'expires': handler.session.expires, 'state': handler.session['count']}
