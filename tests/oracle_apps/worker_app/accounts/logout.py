"""Remove a session."""

from toto.invocation import *


@requires('session_id')
def invoke(handler, parameters):
    handler.db_connection.remove_session(parameters['session_id'])
    return {'removed': True}
