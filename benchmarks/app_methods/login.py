from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    session = handler.db_connection.create_session(parameters['user_id'],
                                                   parameters['password'])
    return {'session_id': session.session_id}
