"""Create an account and sign in: answers as 1.0.12's account.login did."""
from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    handler.db_connection.create_account(parameters['user_id'], parameters['password'])
    return _session_answer(handler.create_session(parameters['user_id'],
                                                  parameters['password']))


def _session_answer(session):
    answer = {'session_id': session.session_id, 'expires': session.expires,
              'user_id': session.user_id}
    if session.key:
        answer['key'] = session.key
    return answer
