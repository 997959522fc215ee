"""Which of a request's database work the web server runs off the IOLoop, and where.

A driver whose calls wait on the network says so with ``blocking = True`` (the mongodb,
redis, mysql and postgres drivers, and ``RedisSessionCache``); the json and none drivers do
not, and their work stays on the IOLoop as before. For a blocking driver the handler loads
the session a session decorator needs on the ``toto.database`` task queue before the method
runs (see :func:`prefetch_session_id`), and the built-in account methods create sessions and
accounts there::

    from toto import _webdatabase

    if _webdatabase.session_work_blocks(handler.db_connection):
        session_id, anonymous = _webdatabase.prefetch_session_id(handler, invoke, parameters,
                                                                 settings)
"""

from __future__ import absolute_import, division, print_function

import logging

import six
from tornado.options import options

from toto import _websession

logger = logging.getLogger('toto.handler')

# The name an outage names, by the driver module that made the connection.
_DRIVER_NAMES = {'toto.mongodbconnection': 'mongodb', 'toto.redisconnection': 'redis',
                 'toto.mysqldbconnection': 'mysql', 'toto.postgresconnection': 'postgres'}


def _blocks(thing):
    # --database_threads=0 keeps the work on the IOLoop, as 1.0.12 did: one thread hop a
    # request costs more than a fast local database takes to answer.
    return bool(getattr(thing, 'blocking', False)) and options.database_threads > 0


def session_work_blocks(connection):
    """True when loading a session through ``connection`` waits on a blocking database.

    With a session cache only the cache is asked (its ``blocking`` says), so sessions in a
    memory or client-side cache keep being served on the IOLoop while the database is away.
    """
    cache = getattr(connection, '_session_cache', None)
    if cache:
        return _blocks(cache)
    return _blocks(connection)


def account_work_blocks(connection):
    """True when creating sessions or accounts through ``connection`` may block.

    Signing in reads the account from the database even with a session cache.
    """
    return _blocks(connection) or _blocks(getattr(connection, '_session_cache', None))


def database_name(connection):
    """The name an unavailable-database error gives for ``connection`` (``mysql``...)."""
    for cls in type(connection).__mro__:
        name = _DRIVER_NAMES.get(cls.__module__)
        if name is not None:
            return name
    return getattr(options, 'database', None) or type(connection).__name__


def prefetch_session_id(handler, invoke, parameters, settings):
    """``(session id to load, create an anonymous session when there is none)`` for the
    session decorator of ``invoke`` (``invoke.loads_session``); the id is None when there is
    nothing to load.

    Only what the decorator would do: nothing when ``handler.session`` already is the
    session (a later entry of a batch), nothing for a cookie another site sent (the decorator
    refuses it without a look-up), no look-up of ids that are not text (drivers refuse those).
    """
    where = getattr(invoke, 'loads_session', None)
    if where is None:
        return None, False
    if where == 'parameter':
        session_id = parameters.get('session_id') if isinstance(parameters, dict) else None
        if not session_id or (handler.session and handler.session.session_id == session_id):
            return None, False
    else:
        if handler.session:
            return None, False
        session_id, from_cookie = _websession.requested_session_id(handler, settings)
        if from_cookie and _websession.cookie_refused(handler.request, settings):
            return None, False
    if not session_id or not isinstance(session_id, six.string_types):
        session_id = None
    return session_id, where == 'anonymous'
