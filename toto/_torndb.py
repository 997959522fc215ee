"""A torndb-style MySQL connection over PyMySQL: what ``handler.db`` is with ``--database=mysql``.

Toto 1.0.12 gave applications a ``torndb.Connection``; torndb is unmaintained and runs on
Python 2 only, so this module offers the same calls over PyMySQL (pure Python, every Python
of the matrix). Rows are :class:`Row` dicts whose keys also read as attributes::

    from toto._torndb import Connection

    db = Connection('127.0.0.1:3306', 'app', 'user', 'secret')
    row = db.get('select user_id from account where account_id = %s', 7)
    print(row.user_id)
    for row in db.query('select * from session where expires > %s', now):
        ...
    new_id = db.execute('insert into log (message) values (%s)', 'hello')   # lastrowid

``host`` is ``'host'``, ``'host:port'`` or the path of a Unix socket (anything with a
``/``), as torndb took it. Sessions use UTF-8 (``utf8mb4`` unless another ``charset`` is
given), ``time_zone '+0:00'``, ``sql_mode TRADITIONAL`` and autocommit. A failure that
closes the connection (the server went away, a timeout) is raised, and the next call connects
again; so does a call after ``max_idle_time`` seconds without one. A connection is not
thread-safe: give each thread its own (PyMySQL's rule, as MySQLdb's).
"""

from __future__ import absolute_import, division, print_function

import logging
import time

logger = logging.getLogger('toto.torndb')

try:
    import pymysql
    import pymysql.cursors
except ImportError:  # reported by the driver that needs it, with the pip extra
    pymysql = None

if pymysql is not None:
    IntegrityError = pymysql.IntegrityError
    OperationalError = pymysql.OperationalError
    InterfaceError = pymysql.InterfaceError
    Error = pymysql.Error
    #: The errors after which the connection cannot be used again.
    CONNECTION_ERRORS = (pymysql.OperationalError, pymysql.InterfaceError)
else:
    IntegrityError = OperationalError = InterfaceError = Error = None
    CONNECTION_ERRORS = ()

__all__ = ['Connection', 'Row', 'IntegrityError', 'OperationalError']

_DEFAULT_PORT = 3306


class Row(dict):
    """A dict whose keys can also be read as attributes (``row.user_id``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)


def _split_host(host):
    # torndb's rules: a '/' means a socket path, 'name:port' a TCP port.
    if '/' in host:
        return {'unix_socket': host}
    name, _, port = host.partition(':')
    return {'host': name or 'localhost', 'port': int(port) if port else _DEFAULT_PORT}


class Connection(object):
    """A MySQL connection with torndb's calls (``get``, ``query``, ``execute``, ...).

    Arguments as torndb's; ``connect_timeout``, ``read_timeout`` and ``write_timeout`` are
    seconds (0 or None: no limit). Connecting fails at construction with an error in the
    log, as in torndb, and the first call tries again.
    """

    def __init__(self, host, database, user=None, password=None, max_idle_time=7 * 3600,
                 connect_timeout=0, time_zone='+0:00', charset='utf8mb4',
                 sql_mode='TRADITIONAL', read_timeout=None, write_timeout=None, **kwargs):
        self.host = host
        self.database = database
        self.max_idle_time = float(max_idle_time)
        settings = dict(_split_host(host), database=database, user=user, password=password or '',
                        charset=charset, autocommit=True, sql_mode=sql_mode,
                        init_command="set time_zone = '%s'" % time_zone.replace("'", ''),
                        cursorclass=pymysql.cursors.Cursor)
        # PyMySQL's default connect timeout is 10 s; 0 means "none" in torndb's words.
        settings['connect_timeout'] = connect_timeout or 31536000
        if read_timeout:
            settings['read_timeout'] = read_timeout
        if write_timeout:
            settings['write_timeout'] = write_timeout
        settings.update(kwargs)
        self._settings = settings
        self._db = None
        self._last_use_time = time.time()
        try:
            self.reconnect()
        except Exception:
            logger.error('Cannot connect to MySQL on %s', self.host, exc_info=True)

    def __del__(self):
        self.close()

    def close(self):
        """Close the connection; the next call opens a new one."""
        db, self._db = getattr(self, '_db', None), None
        if db is not None:
            try:
                db.close()
            except Exception:  # already broken: nothing to tell the server
                pass

    def reconnect(self):
        """Close the connection and open a new one."""
        self.close()
        self._db = pymysql.connect(**self._settings)
        self._last_use_time = time.time()

    # -- reading -----------------------------------------------------------------------

    def iter(self, query, *parameters, **kwparameters):
        """The rows of ``query`` one by one, read from the server as they are used."""
        self._ensure_connected()
        cursor = pymysql.cursors.SSCursor(self._db)
        try:
            self._execute(cursor, query, parameters, kwparameters)
            names = [description[0] for description in cursor.description]
            for row in cursor:
                yield Row(zip(names, row))
        finally:
            cursor.close()

    def query(self, query, *parameters, **kwparameters):
        """The rows of ``query`` as a list of :class:`Row`."""
        cursor = self._cursor()
        try:
            self._execute(cursor, query, parameters, kwparameters)
            if not cursor.description:
                return []
            names = [description[0] for description in cursor.description]
            return [Row(zip(names, row)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def get(self, query, *parameters, **kwparameters):
        """The one row of ``query``, None when there is none; more than one raises."""
        rows = self.query(query, *parameters, **kwparameters)
        if not rows:
            return None
        if len(rows) > 1:
            raise Exception('Multiple rows returned for Database.get() query')
        return rows[0]

    # -- writing -----------------------------------------------------------------------

    def execute(self, query, *parameters, **kwparameters):
        """Run ``query``; returns the id of the row it inserted (if any)."""
        return self.execute_lastrowid(query, *parameters, **kwparameters)

    def execute_lastrowid(self, query, *parameters, **kwparameters):
        """Run ``query``; returns the id of the row it inserted."""
        cursor = self._cursor()
        try:
            self._execute(cursor, query, parameters, kwparameters)
            return cursor.lastrowid
        finally:
            cursor.close()

    def execute_rowcount(self, query, *parameters, **kwparameters):
        """Run ``query``; returns how many rows it changed."""
        cursor = self._cursor()
        try:
            self._execute(cursor, query, parameters, kwparameters)
            return cursor.rowcount
        finally:
            cursor.close()

    def executemany(self, query, parameters):
        """Run ``query`` once per parameter tuple; returns the last inserted id."""
        return self.executemany_lastrowid(query, parameters)

    def executemany_lastrowid(self, query, parameters):
        """Run ``query`` once per parameter tuple; returns the last inserted id."""
        cursor = self._cursor()
        try:
            self._run(cursor.executemany, query, parameters)
            return cursor.lastrowid
        finally:
            cursor.close()

    def executemany_rowcount(self, query, parameters):
        """Run ``query`` once per parameter tuple; returns how many rows changed."""
        cursor = self._cursor()
        try:
            self._run(cursor.executemany, query, parameters)
            return cursor.rowcount
        finally:
            cursor.close()

    # torndb's other names for the same calls.
    update = execute_rowcount
    updatemany = executemany_rowcount
    insert = execute_lastrowid
    insertmany = executemany_lastrowid

    # -- helpers -----------------------------------------------------------------------

    def _ensure_connected(self):
        # The server drops connections idle longer than its wait_timeout (8 h by default),
        # without telling the client: reconnect before that rather than fail once.
        if self._db is None or time.time() - self._last_use_time > self.max_idle_time:
            self.reconnect()
        self._last_use_time = time.time()

    def _cursor(self):
        self._ensure_connected()
        return self._db.cursor()

    def _execute(self, cursor, query, parameters, kwparameters):
        return self._run(cursor.execute, query, kwparameters or parameters or None)

    def _run(self, call, query, parameters):
        try:
            return call(query, parameters)
        except CONNECTION_ERRORS as error:
            # A connection error leaves the connection unusable: drop it so the next call
            # connects again (a lost server that came back is used again without a restart).
            if _closes_connection(error):
                logger.error('Error connecting to MySQL on %s: %s', self.host, error)
                self.close()
            raise


def _closes_connection(error):
    # OperationalError also covers SQL mistakes the server reports (unknown column 1054, ...):
    # those keep the connection. Client-side errors (codes 2000-2999), timeouts, and
    # InterfaceError (the socket is closed) do not.
    if isinstance(error, pymysql.InterfaceError):
        return True
    code = error.args[0] if error.args else 0
    return not isinstance(code, int) or code == 0 or 2000 <= code < 3000 or code in (
        1053, 1077, 1152, 1158, 1159, 1160, 1161, 1927)
