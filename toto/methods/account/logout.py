"""``account.logout``: end the request's session; the answer is ``{"authenticated": false}``.

Needs a logged-in session (``ERROR_NOT_AUTHORIZED`` otherwise). With a session cache that
cannot delete (``toto.clientsessioncache.ClientCache``) the id stays valid until it expires.
"""

from __future__ import absolute_import, division, print_function

from tornado import gen

from toto.invocation import authenticated
from toto.methods.account import login

__all__ = ['invoke']


@authenticated
def invoke(handler, parameters):
    """Log out of the session the request was made with."""
    if login._database_blocks(handler):
        return _logout_later(handler)
    handler.db_connection.remove_session(handler.session.session_id)
    return {'authenticated': False}


@gen.coroutine
def _logout_later(handler):
    yield handler.run_database(handler.db_connection.remove_session, handler.session.session_id)
    raise gen.Return({'authenticated': False})
