"""@authenticated: counts calls in the session state."""
from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    handler.session['count'] = (handler.session['count'] or 0) + 1
    handler.session.save()
    return {'user_id': handler.session.user_id, 'count': handler.session['count']}
