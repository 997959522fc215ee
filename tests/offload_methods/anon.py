"""@anonymous_session: the caller's session, or a new anonymous one."""
from toto.invocation import *


@anonymous_session
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id}
