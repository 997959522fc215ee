"""``whoami``: the session's user id and how many calls this session made (saved in it)."""

from toto.invocation import authenticated


@authenticated
def invoke(handler, parameters):
    calls = handler.session.state.get('calls', 0) + 1
    handler.session['calls'] = calls
    handler.session.save()
    return {'user_id': handler.session.user_id, 'calls': calls}
