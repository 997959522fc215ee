from toto.invocation import *

from web_methods.signup import _session_answer


@requires('user_id', 'password')
def invoke(handler, parameters):
    return _session_answer(handler.create_session(parameters['user_id'],
                                                  parameters['password']))
