"""The connection for ``--database=none``: no storage at all.

Accounts need a database, so every account operation (creating one, signing in, changing a
password) raises ``NotImplementedError`` with a message saying so; a server answers those calls
with error 1000 and that message. Anonymous sessions work when a session cache keeps them, for
example ``toto.clientsessioncache.ClientCache``, which stores the whole session in its id::

    from toto.fakeconnection import FakeConnection

    connection = FakeConnection()
    connection.set_session_cache(cache)           # any TotoSessionCache
    session = connection.create_session()         # anonymous
    session['cart'] = ['apple']
    session.save()                                # the cache may give it a new session_id
    connection.retrieve_session(session.session_id)['cart']   # ['apple']

Without a cache there is nowhere to keep a session: creating one raises ``NotImplementedError``
and looking one up finds nothing.
"""

from __future__ import absolute_import, division, print_function

import logging

from toto.dbconnection import DBConnection
from toto.session import TotoSession

logger = logging.getLogger('toto.fakeconnection')

_NO_ACCOUNTS = ('accounts need a database, and --database is none: '
                'choose a database to create accounts and sign in')
_NO_SESSION_STORE = ('sessions need a session cache when --database is none: '
                     'call db_connection.set_session_cache() in a startup function')


class FakeSession(TotoSession):
    """A session that lives only in the connection's session cache."""

    def get_account(self, *args):
        raise NotImplementedError(_NO_ACCOUNTS)

    def refresh(self):
        session_data = self._refresh_cache()
        if session_data:
            self.__init__(self._db, session_data, self._session_cache)

    def save(self):
        if not self._save_cache():
            raise NotImplementedError(_NO_SESSION_STORE)


class FakeConnection(DBConnection):
    """A :class:`~toto.dbconnection.DBConnection` without a database; ``db`` is None.

    Takes the session lifetime arguments of ``DBConnection``; they apply to the sessions a
    session cache keeps.
    """

    def __init__(self, *args, **kwargs):
        super(FakeConnection, self).__init__(*args, **kwargs)
        self.db = None

    def _get_account(self, user_id):
        raise NotImplementedError(_NO_ACCOUNTS)

    def _store_account(self, user_id, values):
        raise NotImplementedError(_NO_ACCOUNTS)

    def _update_password(self, user_id, account, hashed_password):
        raise NotImplementedError(_NO_ACCOUNTS)

    def _store_session(self, session_id, session_data):
        raise NotImplementedError(_NO_SESSION_STORE)

    def _update_expiry(self, session_id, session_data):
        # Only reached for sessions stored here, and nothing is.
        pass

    def _load_uncached_data(self, session_id):
        return None

    def _remove_session(self, session_id):
        pass

    def _instantiate_session(self, session_data, session_cache):
        return FakeSession(self, session_data, session_cache)
