"""``account.logout``: end the request's session; the answer is ``{"authenticated": false}``.

Needs a logged-in session (``ERROR_NOT_AUTHORIZED`` otherwise). With a session cache that
cannot delete (``toto.clientsessioncache.ClientCache``) the id stays valid until it expires.
"""

from __future__ import absolute_import, division, print_function

from toto.invocation import authenticated

__all__ = ['invoke']


@authenticated
def invoke(handler, parameters):
    """Log out of the session the request was made with."""
    handler.db_connection.remove_session(handler.session.session_id)
    return {'authenticated': False}
