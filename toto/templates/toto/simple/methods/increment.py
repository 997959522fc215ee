"""increment: counts the calls made with the current login, in the session's state."""

from toto.invocation import authenticated


@authenticated
def invoke(handler, parameters):
    count = (handler.session['counter'] or 0) + 1
    handler.session['counter'] = count
    handler.session.save()
    return {'count': count}
