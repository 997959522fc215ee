from toto.invocation import *  # noqa: F401


@authenticated
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id}
