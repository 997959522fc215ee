from toto.invocation import *


@optionally_authenticated
def invoke(handler, parameters):
    return {'signed_in': bool(handler.session and handler.session.user_id)}
