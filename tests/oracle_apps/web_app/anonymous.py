"""``@anonymous_session``: a session for anyone; counts calls in its state."""

from toto.invocation import *


@anonymous_session
def invoke(handler, parameters):
    handler.session['visits'] = (handler.session['visits'] or 0) + 1
    handler.session.save()
    return {'user_id': handler.session.user_id, 'visits': handler.session['visits']}
