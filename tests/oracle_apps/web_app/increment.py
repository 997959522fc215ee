"""An ``@authenticated`` counter in the session's state, as in 1.0.12's ``simple`` template."""

from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    handler.session['counter'] = (handler.session['counter'] or 0) + 1
    handler.session.save()
    return {'count': handler.session['counter']}
