"""``counter``: how many times this login called it, kept in the session's state."""

from toto.invocation import authenticated


@authenticated
def invoke(handler, parameters):
    count = (handler.session['count'] or 0) + 1
    handler.session['count'] = count
    handler.session.save()
    return {'count': count}
