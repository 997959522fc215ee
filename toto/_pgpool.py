"""A psycopg2 connection pool with ``get``/``query``/``execute``: ``handler.db`` for postgres.

Toto 1.0.12 added these three calls to psycopg2's ``ThreadedConnectionPool`` itself (for
every user of psycopg2 in the process); here they live on a subclass. Each call takes a
connection from the pool, runs one statement, commits (or rolls back on an error) and gives
the connection back -- also when the statement fails, and closed when the connection broke,
so a restarted server is used again without a restart of the service::

    from toto._pgpool import ConnectionPool

    pool = ConnectionPool(1, 10, host='127.0.0.1', port=5432, database='app', user='toto')
    row = pool.get('select user_id from account where account_id = %s', 7)   # dict or None
    for row in pool.query('select * from account where user_id like %s', 'a%'):
        print(row['user_id'], row.user_id)
    pool.execute('update account set nickname = %s where account_id = %s', 'al', 7)

Parameters follow the statement one by one (``get(sql, a, b)``); a single list, tuple or
dict is taken as the whole parameter set, as 1.0.12's calls took it
(``get(sql, (a, b))``). ``getconn``/``putconn`` work as in psycopg2.
"""

from __future__ import absolute_import, division, print_function

import logging

import psycopg2
from psycopg2.pool import ThreadedConnectionPool

# The rows the MySQL connection gives (torndb's), so code reads both alike; importing
# _torndb does not need PyMySQL.
from toto._torndb import Row

__all__ = ['ConnectionPool', 'Row']

logger = logging.getLogger('toto.pgpool')

#: Errors after which a connection is not used again.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
# SQLSTATEs of the OperationalErrors that leave the connection usable:
# deadlock_detected and serialization_failure.
_ROLLED_BACK = ('40P01', '40001')


def _parameters(arguments):
    if len(arguments) == 1 and isinstance(arguments[0], (list, tuple, dict)):
        return arguments[0]
    return arguments or None


def _fetch_one(cursor):
    if cursor.description is None:
        return None
    rows = cursor.fetchmany(2)
    if not rows:
        return None
    if len(rows) > 1:
        raise Exception('Multiple rows returned for get() query')
    return _row(cursor, rows[0])


def _fetch_all(cursor):
    if cursor.description is None:
        return []
    return [_row(cursor, row) for row in cursor.fetchall()]


def _row(cursor, values):
    return Row(zip([column[0] for column in cursor.description], values))


class ConnectionPool(ThreadedConnectionPool):
    """``ThreadedConnectionPool(minconn, maxconn, **connect arguments)`` plus three calls."""

    def get(self, sql, *parameters):
        """The one row of ``sql`` as a :class:`Row`, or None; more than one raises."""
        return self._run(sql, _parameters(parameters), _fetch_one)

    def query(self, sql, *parameters):
        """An iterator over the rows of ``sql`` (all fetched before the connection goes back)."""
        return iter(self._run(sql, _parameters(parameters), _fetch_all))

    def execute(self, sql, *parameters):
        """Run ``sql`` and commit; returns how many rows it changed."""
        return self._run(sql, _parameters(parameters), lambda cursor: cursor.rowcount)

    def _run(self, sql, parameters, fetch):
        connection = self.getconn()
        broken = False
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, parameters)
                result = fetch(cursor)
            finally:
                cursor.close()
            connection.commit()
            return result
        except Exception as error:
            # A deadlock or a serialization failure is an OperationalError too, but the
            # connection is fine: it only rolls the transaction back.
            broken = bool(connection.closed) or (
                isinstance(error, CONNECTION_ERRORS)
                and getattr(error, 'pgcode', None) not in _ROLLED_BACK)
            if not broken:
                try:
                    connection.rollback()
                except psycopg2.Error:
                    broken = True
            if broken:
                logger.error('PostgreSQL connection lost: %s', ' '.join(str(error).split()))
            raise
        finally:
            self.putconn(connection, close=broken)
            if broken:
                self._close_idle()

    def _close_idle(self):
        # A connection that broke usually means the server restarted: the idle ones are
        # broken too, and would each fail one more call. New ones are made on demand.
        with self._lock:
            idle, self._pool = self._pool, []
        for connection in idle:
            try:
                connection.close()
            except psycopg2.Error:
                pass
