"""Sign ``user_id`` in (creating the account on first use); later calls run in the session."""

from toto.exceptions import TotoException


def invoke(handler, parameters):
    try:
        handler.db_connection.create_account(parameters['user_id'], 'secret')
    except TotoException:
        pass  # signed up already
    session = handler.create_session(parameters['user_id'], 'secret')
    return {'session_id': session.session_id}
