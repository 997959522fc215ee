"""What the database drivers share: importing their client library, naming an outage, and
running a blocking database call off the IOLoop with a time limit.

Client libraries are optional (pip extras), so a driver imports its library through
:func:`import_driver`, which turns a missing library into one line that says what to install.
Each library reports "the server cannot be reached" with its own exceptions; :func:`unavailable`
recognises them and :func:`translated` turns them into one ``TotoException(ERROR_SERVER,
'database <name> unavailable: ...')``, the error a client sees. :func:`run_blocking` runs a call
on the ``toto.database`` task queue (``--database_threads`` threads) and gives up after
``--database_timeout`` seconds, so a database that hangs does not hang the IOLoop::

    from toto._dboffload import import_driver, run_blocking

    redis = import_driver('redis', 'redis', 'redis')   # DatabaseUnavailable when missing

    @tornado.gen.coroutine
    def load(connection, session_id):
        data = yield run_blocking('redis', connection.db.get, 'session:' + session_id)
        raise tornado.gen.Return(data)
"""

from __future__ import absolute_import, division, print_function

import contextlib
import datetime
import importlib
import logging
import sys

from tornado import gen
from tornado.options import options

from toto._methods import RateLimitedLog
from toto.dbconnection import DatabaseUnavailable
from toto.exceptions import ERROR_SERVER, TotoException

__all__ = ['database_queue', 'database_timeout', 'import_driver', 'run_blocking', 'translated',
           'unavailable', 'unavailable_error']

logger = logging.getLogger('toto.dboffload')
# Every request meets an outage: one line per kind a while, with the count left out.
_outage_log = RateLimitedLog(logger)

#: The distribution pip installs for a client module, where the names differ.
_DISTRIBUTIONS = {'pymysql': 'PyMySQL', 'psycopg2': 'psycopg2 (psycopg2-binary)'}

#: The name of the shared task queue that runs database calls.
QUEUE_NAME = 'toto.database'

# MySQL error numbers that mean the server (not the statement) is the problem: every client
# error (2000-2999: cannot connect, server gone away, lost connection...), too many
# connections (1040), server shutting down (1053), connection killed (1927).
_MYSQL_UNAVAILABLE_SERVER_ERRORS = frozenset([1040, 1053, 1927])


def import_driver(module, database, extra):
    """Import and return the client library ``module`` of the ``database`` driver.

    Raises :class:`~toto.dbconnection.DatabaseUnavailable` naming the pip extra when it is not
    installed, e.g. ``database mysql needs PyMySQL: pip install 'toto-compat[mysql]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        logger.debug('database %s: cannot import %s: %s', database, module, error)
        raise DatabaseUnavailable("database %s needs %s: pip install 'toto-compat[%s]'"
                                  % (database, _DISTRIBUTIONS.get(module, module), extra))


def _loaded(name):
    # Only libraries a driver has imported can have raised: nothing is imported here.
    return sys.modules.get(name)


def unavailable(error):
    """True when ``error`` (from any client library) means the database cannot be reached.

    Statement errors (a bad query, a duplicate key, a deadlock) are not outages.
    """
    pymongo_errors = _loaded('pymongo.errors')
    if pymongo_errors is not None and isinstance(error, pymongo_errors.ConnectionFailure):
        return True  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError...
    redis_exceptions = _loaded('redis.exceptions')
    if redis_exceptions is not None and isinstance(
            error, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)):
        return True  # BusyLoadingError ("loading the dataset") is a ConnectionError too
    pymysql_err = _loaded('pymysql.err')
    if pymysql_err is not None:
        if isinstance(error, pymysql_err.InterfaceError):
            return True  # a closed connection
        if isinstance(error, pymysql_err.OperationalError):
            # PyMySQL files unknown server errors >= 1000 under OperationalError as well.
            number = error.args[0] if error.args else None
            return isinstance(number, int) and (
                2000 <= number < 3000 or number in _MYSQL_UNAVAILABLE_SERVER_ERRORS)
    psycopg2 = _loaded('psycopg2')
    if psycopg2 is not None:
        extensions = _loaded('psycopg2.extensions')
        rollback = getattr(extensions, 'TransactionRollbackError', ())
        if isinstance(error, psycopg2.OperationalError) and not isinstance(error, rollback):
            return True  # deadlocks and serialization failures are rollbacks, not outages
        if isinstance(error, psycopg2.InterfaceError):
            return True
        pool = _loaded('psycopg2.pool')
        if pool is not None and isinstance(error, pool.PoolError):
            return True  # every connection of the pool is in use
    return False


def unavailable_error(database, cause):
    """The ``TotoException(ERROR_SERVER)`` a client gets when ``database`` is unavailable."""
    text = str(cause).strip().splitlines()
    detail = text[0] if text else type(cause).__name__
    return TotoException(ERROR_SERVER, 'database %s unavailable: %s' % (database, detail))


@contextlib.contextmanager
def translated(database):
    """``with translated('redis'):`` raises an outage in the block as :func:`unavailable_error`.

    Other exceptions pass unchanged.
    """
    try:
        yield
    except Exception as error:
        if not unavailable(error):
            raise
        raise _logged_outage(database, error)


def _logged_outage(database, error):
    """Log the outage ``error`` (rate-limited); return its :func:`unavailable_error`."""
    _outage_log.log(logging.WARNING, ('unavailable', database),
                    'database %s unavailable: %s', database, error)
    return unavailable_error(database, error)


def database_timeout():
    """``--database_timeout``: seconds a database call may take (10.0 until it is defined)."""
    return getattr(options, 'database_timeout', 10.0)


def database_queue():
    """The shared ``toto.database`` task queue (``--database_threads`` threads, default 4)."""
    from toto.tasks import TaskQueue
    return TaskQueue.instance(QUEUE_NAME, thread_count=getattr(options, 'database_threads', 4))


@gen.coroutine
def run_blocking(database, function, *args, **kwargs):
    """Run ``function(*args, **kwargs)`` on the database queue; a coroutine for its result.

    Call it from the IOLoop's thread. An outage (see :func:`unavailable`) and no answer within
    ``--database_timeout`` seconds both raise :func:`unavailable_error` for ``database``;
    other exceptions pass unchanged. After a timeout a call already running still ends on its
    thread, and its result is dropped; a call still waiting for a thread is not run at all
    (after an outage, a login whose client was already told "unavailable" must not leave a
    session behind).
    """
    given_up = []

    def run_unless_given_up():
        if given_up:
            return None
        return function(*args, **kwargs)

    future = database_queue().yield_task(run_unless_given_up)
    timeout = database_timeout()
    try:
        if timeout and timeout > 0:
            result = yield gen.with_timeout(datetime.timedelta(seconds=timeout), future,
                                            quiet_exceptions=(Exception,))
        else:
            result = yield future
    except gen.TimeoutError:
        given_up.append(True)
        _outage_log.log(logging.WARNING, ('no answer', database),
                        'database %s: no answer from %r within %s s', database, function,
                        timeout)
        raise TotoException(ERROR_SERVER, 'database %s unavailable: no answer within %s s'
                            % (database, timeout))
    except Exception as error:
        if unavailable(error):
            raise _logged_outage(database, error)
        raise
    raise gen.Return(result)
