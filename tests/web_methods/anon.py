from toto.invocation import *


@anonymous_session
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id, 'session_id': handler.session.session_id}
