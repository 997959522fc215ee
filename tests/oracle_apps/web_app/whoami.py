"""``@authenticated``: the session's user id."""

from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    return {'user_id': handler.session.user_id}
