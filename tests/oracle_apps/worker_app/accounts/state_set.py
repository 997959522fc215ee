"""Store every parameter but ``session_id`` in the session's state and save it."""

from toto.invocation import *


@requires('session_id')
def invoke(handler, parameters):
    session = handler.db_connection.retrieve_session(parameters['session_id'])
    if not session:
        raise TotoException(ERROR_NOT_AUTHORIZED, 'Not authorized')
    for name, value in parameters.items():
        if name != 'session_id':
            session[name] = value
    session.save()
    return {'state': session.state}
