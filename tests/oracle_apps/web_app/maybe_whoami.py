"""``@optionally_authenticated``: the session's user id, or None without a session."""

from toto.invocation import *


@optionally_authenticated
def invoke(handler, parameters):
    return {'user_id': handler.session and handler.session.user_id or None}
