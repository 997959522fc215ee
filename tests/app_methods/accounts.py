from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    """Create an account and a session with state on the worker's --database."""
    db = handler.db_connection
    db.create_account(parameters['user_id'], parameters['password'])
    session = db.create_session(parameters['user_id'], parameters['password'])
    session['visits'] = 1
    session.save()
    loaded = db.retrieve_session(session.session_id)
    return {'user_id': loaded.user_id, 'visits': loaded['visits']}
