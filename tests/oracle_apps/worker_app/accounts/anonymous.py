"""Open an anonymous session (no account)."""

from toto.invocation import *


def invoke(handler, parameters):
    session = handler.db_connection.create_session()
    return {'session_id': session.session_id, 'user_id': session.user_id,
            'expires': session.expires}
