"""Check the password and open a session for the account."""

from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    session = handler.db_connection.create_session(parameters['user_id'], parameters['password'])
    return {'session_id': session.session_id, 'user_id': session.user_id,
            'expires': session.expires}
