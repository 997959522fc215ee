"""Load a session and answer with its user and state (``found`` False if there is none)."""

from toto.invocation import *


@requires('session_id')
def invoke(handler, parameters):
    session = handler.db_connection.retrieve_session(parameters['session_id'])
    if not session:
        return {'found': False}
    return {'found': True, 'user_id': session.user_id, 'state': session.state,
            'counter': session['counter'], 'missing': session['missing']}
