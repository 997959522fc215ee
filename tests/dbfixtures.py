"""pytest fixtures for the database tests: one real server of each kind per test run.

Loaded by tests/conftest.py. The servers (tests/dbservers.py) start the first time a test asks
for them and stay up for the rest of the run; they are killed and their directories removed
when the run ends, also after Ctrl-C. A test gets a fresh database (or emptied Redis) from the
function fixtures, which describe where it is::

    def test_accounts(mariadb_db):
        connection = pymysql.connect(host=mariadb_db.host, port=mariadb_db.port,
                                     user=mariadb_db.user, password=mariadb_db.password,
                                     database=mariadb_db.database)

    def test_options(redis_db, database_options):
        database_options.update(redis_db.options())   # --database=redis --db_port=...

When a server program (or a client library, :func:`require_library`) is missing the test is
skipped with the reason, or fails when the ``CI`` environment variable is set.
"""

from __future__ import absolute_import, division, print_function

import atexit
import itertools
import os

import pytest

import dbservers

__all__ = ['DatabaseInfo', 'database_options', 'mariadb_db', 'mariadb_server', 'mongodb_db',
           'mongodb_server', 'postgres_db', 'postgres_server', 'redis_db', 'redis_server',
           'require_library', 'require_server']

# Every server this process started, so that the atexit backstop can end what teardown did not.
_started = []
_database_numbers = itertools.count(1)


def _unavailable(reason):
    if os.environ.get('CI'):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_server(kind):
    """Skip the test (fail under CI) unless the ``kind`` server can run here."""
    reason = dbservers.missing(kind)
    if reason:
        _unavailable(reason)


def require_library(module, install):
    """Import the client library ``module``; skip (fail under CI) when it is not installed.

    ``install`` says how to get it, e.g. ``"pip install 'redis>=4.1'"``.
    """
    try:
        return __import__(module, fromlist=['_'])
    except ImportError as error:
        _unavailable('%s not installed (%s): %s' % (module, install, error))


_OWNER_PID = os.getpid()


def _close_all():
    # Only in the test run's own process: a child forked by a test (service tests fork) runs
    # the atexit handlers it inherited when it exits, and must not kill the run's servers.
    if os.getpid() != _OWNER_PID:
        return
    while _started:
        _started.pop().close()


atexit.register(_close_all)


def _session_server(kind):
    require_server(kind)
    server = dbservers.SERVERS[kind][0]()
    _started.append(server)
    try:
        server.start()
        yield server
    finally:
        # Fault tests may leave it stopped or paused; close() kills and removes either way.
        server.close()
        if server in _started:
            _started.remove(server)


@pytest.fixture(scope='session')
def redis_server():
    """A ``redis-server`` (:class:`dbservers.RedisServer`) for the whole run."""
    for server in _session_server('redis'):
        yield server


@pytest.fixture(scope='session')
def mariadb_server():
    """A ``mariadbd`` (:class:`dbservers.MariaDBServer`) for the whole run."""
    for server in _session_server('mariadb'):
        yield server


@pytest.fixture(scope='session')
def postgres_server():
    """A PostgreSQL ``postgres`` (:class:`dbservers.PostgresServer`) for the whole run."""
    for server in _session_server('postgres'):
        yield server


@pytest.fixture(scope='session')
def mongodb_server():
    """SecantusDB's MongoDB wire server (:class:`dbservers.MongoWireServer`) for the run."""
    for server in _session_server('mongodb'):
        yield server


class DatabaseInfo(object):
    """Where a test's database is: ``kind``, ``host``, ``port``, ``database``, ``user``,
    ``password`` and the ``server`` object (to stop, restart or pause it)."""

    def __init__(self, kind, server, database, user=None, password=None):
        self.kind = kind
        self.server = server
        self.host = '127.0.0.1'
        self.port = server.port
        self.database = database
        self.user = user
        self.password = password

    def options(self):
        """The toto options (``--database`` and the rest) that select this database."""
        values = {'database': 'mysql' if self.kind == 'mariadb' else self.kind,
                  'db_host': self.host, 'db_port': self.port}
        if self.kind == 'redis':
            values['redis_database'] = self.database
        elif self.kind == 'mongodb':
            values['mongodb_database'] = self.database
        else:
            prefix = 'mysql' if self.kind == 'mariadb' else 'postgres'
            values.update({prefix + '_database': self.database, prefix + '_user': self.user,
                           prefix + '_password': self.password})
        return values

    def __repr__(self):
        return '<%s database %r at %s:%s>' % (self.kind, self.database, self.host, self.port)


def _fresh_name():
    # Unique within the run; runs side by side have servers of their own.
    return 'toto_t%d_%d' % (os.getpid(), next(_database_numbers))


def _running(server):
    # A fault test that ended with its server stopped must not break the next test.
    if server.process is None:
        server.start()
    return server


@pytest.fixture
def redis_db(redis_server):
    """Redis database 0 of the run's server, emptied (FLUSHALL) before the test."""
    _running(redis_server).flush()
    return DatabaseInfo('redis', redis_server, 0)


@pytest.fixture
def mariadb_db(mariadb_server):
    """A new, empty MariaDB database for the test (user/password ``toto``/``toto``)."""
    name = _fresh_name()
    _running(mariadb_server).create_database(name)
    return DatabaseInfo('mariadb', mariadb_server, name, mariadb_server.user,
                        mariadb_server.password)


@pytest.fixture
def postgres_db(postgres_server):
    """A new, empty PostgreSQL database for the test (superuser ``toto``, no password)."""
    name = _fresh_name()
    _running(postgres_server).create_database(name)
    return DatabaseInfo('postgres', postgres_server, name, postgres_server.user, None)


@pytest.fixture
def mongodb_db(mongodb_server):
    """A MongoDB database name no other test of the run uses (created by the first write)."""
    return DatabaseInfo('mongodb', _running(mongodb_server), _fresh_name())


@pytest.fixture
def database_options():
    """The toto database options as a dict-like setter, restored after the test.

    ``database_options.update(mariadb_db.options())`` points ``--database`` at a test
    database; options defined by toto.dbconnection only.
    """
    from tornado.options import options
    import toto.dbconnection  # noqa: F401 -- defines the options

    names = [name for name in options.group_dict(_option_group(options))]
    saved = dict((name, getattr(options, name)) for name in names)

    class _Setter(object):
        def update(self, values):
            for name, value in values.items():
                setattr(options, name, value)

        def __setitem__(self, name, value):
            setattr(options, name, value)

        def __getitem__(self, name):
            return getattr(options, name)

    try:
        yield _Setter()
    finally:
        for name, value in saved.items():
            setattr(options, name, value)


def _option_group(options):
    # tornado groups options by the file that defined them.
    for group in options.groups():
        if group.replace('\\', '/').endswith('toto/dbconnection.py'):
            return group
    raise LookupError('toto.dbconnection defines no options')
