"""toto._dboffload: missing libraries, which errors are outages, blocking calls off the IOLoop.

The outage errors are real ones: clients of the libraries that are installed connect to a port
where nothing listens (or to a real server that is frozen).
"""

from __future__ import absolute_import, division, print_function

import sys
import threading
import time

import pytest
from tornado import gen

import dbservers
from dbfixtures import require_library
from support import new_io_loop
from toto._dboffload import (database_queue, import_driver, run_blocking, translated,
                             unavailable, unavailable_error)
from toto.dbconnection import DatabaseUnavailable
from toto.exceptions import ERROR_SERVER, TotoException


@pytest.fixture
def loop():
    io_loop = new_io_loop()
    yield io_loop
    io_loop.close(all_fds=True)


@pytest.fixture
def short_timeout(database_options):
    database_options['database_timeout'] = 0.5
    return 0.5


def test_import_driver_gives_the_module_or_one_line_naming_the_extra(monkeypatch):
    assert import_driver('json', 'json', 'json') is sys.modules['json']
    monkeypatch.setitem(sys.modules, 'pymysql', None)
    with pytest.raises(DatabaseUnavailable) as raised:
        import_driver('pymysql', 'mysql', 'mysql')
    assert str(raised.value) == "database mysql needs PyMySQL: pip install 'toto-compat[mysql]'"
    with pytest.raises(DatabaseUnavailable) as raised:
        import_driver('toto_no_such_client_library', 'mongodb', 'mongodb')
    assert "pip install 'toto-compat[mongodb]'" in str(raised.value)


def _refused_port():
    return dbservers.free_port()


def _redis_client(redis, port):
    # No retries: redis-py 6+ retries a refused connection three times with backoff (seconds).
    kwargs = {}
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        kwargs['retry'] = Retry(NoBackoff(), 0)
    except ImportError:
        pass
    return redis.StrictRedis('127.0.0.1', port, socket_connect_timeout=2, **kwargs)


def test_a_refused_redis_connection_is_an_outage_a_redis_error_is_not():
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    client = _redis_client(redis, _refused_port())
    with pytest.raises(redis.RedisError) as raised:
        client.get('x')
    assert unavailable(raised.value)
    assert not unavailable(redis.ResponseError('WRONGTYPE'))
    assert not unavailable(ValueError('x'))


def test_mysql_outages_are_client_errors_not_statement_errors():
    pymysql = require_library('pymysql', "pip install 'toto-compat[mysql]'")
    with pytest.raises(pymysql.MySQLError) as raised:
        pymysql.connect(host='127.0.0.1', port=_refused_port(), user='x', connect_timeout=2)
    assert raised.value.args[0] == 2003 and unavailable(raised.value)
    assert unavailable(pymysql.err.OperationalError(2006, 'MySQL server has gone away'))
    assert unavailable(pymysql.err.InterfaceError(0, ''))
    # PyMySQL files unknown server errors (1054: unknown column) as OperationalError too.
    assert not unavailable(pymysql.err.OperationalError(1054, "Unknown column 'x'"))
    assert not unavailable(pymysql.err.IntegrityError(1062, 'Duplicate entry'))


def test_postgres_outages_but_not_deadlocks():
    psycopg2 = require_library('psycopg2', "pip install 'toto-compat[postgres]'")
    extensions = require_library('psycopg2.extensions', "pip install 'toto-compat[postgres]'")
    with pytest.raises(psycopg2.Error) as raised:
        psycopg2.connect(host='127.0.0.1', port=_refused_port(), user='x', connect_timeout=2)
    assert unavailable(raised.value)
    assert not unavailable(extensions.TransactionRollbackError('deadlock detected'))
    assert not unavailable(psycopg2.IntegrityError('duplicate key'))


@pytest.mark.timeout(30)
def test_mongodb_outages():
    require_library('pymongo', "pip install 'toto-compat[mongodb]'")
    import pymongo
    import pymongo.errors
    client = pymongo.MongoClient('127.0.0.1', _refused_port(), serverSelectionTimeoutMS=300,
                                 connect=False)
    try:
        with pytest.raises(pymongo.errors.PyMongoError) as raised:
            client.admin.command('ping')
    finally:
        client.close()
    assert unavailable(raised.value)
    assert not unavailable(pymongo.errors.DuplicateKeyError('E11000'))


def test_translated_names_the_database_and_passes_other_errors():
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    with pytest.raises(TotoException) as raised:
        with translated('redis'):
            raise redis.ConnectionError('Error 111 connecting to 127.0.0.1:1.\nmore')
    assert raised.value.code == ERROR_SERVER
    assert raised.value.value == ('database redis unavailable: Error 111 connecting to '
                                  '127.0.0.1:1.')
    with pytest.raises(KeyError):
        with translated('redis'):
            raise KeyError('x')
    assert unavailable_error('mysql', ValueError()).value == 'database mysql unavailable: ' \
        'ValueError'


def test_an_outage_met_by_every_request_is_logged_once_a_while(caplog):
    # A client can send requests as fast as it likes while the database is down.
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    with caplog.at_level('WARNING', logger='toto.dboffload'):
        for _ in range(50):
            with pytest.raises(TotoException):
                with translated('redis-log-test'):
                    raise redis.ConnectionError('Error 111 connecting to 127.0.0.1:1.')
    lines = [record for record in caplog.records if 'redis-log-test' in record.getMessage()]
    assert len(lines) == 1, [record.getMessage() for record in lines]


def test_run_blocking_runs_on_the_database_queue_and_gives_the_result(loop):
    @gen.coroutine
    def call():
        result = yield run_blocking('json', lambda a, b=0: (threading.current_thread().name,
                                                            a + b), 1, b=2)
        raise gen.Return(result)

    name, total = loop.run_sync(call, timeout=10)
    assert total == 3 and name.startswith('toto.database-')
    assert database_queue() is database_queue()


def test_run_blocking_passes_ordinary_errors(loop):
    def fail():
        raise KeyError('not an outage')

    with pytest.raises(KeyError):
        loop.run_sync(lambda: run_blocking('json', fail), timeout=10)


@pytest.mark.timeout(30)
def test_a_call_that_hangs_is_a_server_error_after_database_timeout(loop, short_timeout):
    release = threading.Event()
    started = time.time()
    try:
        with pytest.raises(TotoException) as raised:
            loop.run_sync(lambda: run_blocking('redis', release.wait, 20), timeout=10)
    finally:
        release.set()
    assert 0.4 < time.time() - started < 3
    assert raised.value.code == ERROR_SERVER
    assert raised.value.value == 'database redis unavailable: no answer within 0.5 s'


@pytest.mark.timeout(30)
def test_a_call_given_up_before_it_started_never_runs(loop, short_timeout):
    # Every thread of the queue is busy: the call waits, times out, and must not run
    # once a thread comes free (a login answered "unavailable" leaves no session).
    queue = database_queue()
    release = threading.Event()
    for _ in range(queue.thread_count):
        queue.add_task(release.wait, 20)
    ran = []
    try:
        with pytest.raises(TotoException) as raised:
            loop.run_sync(lambda: run_blocking('mysql', ran.append, 'late'), timeout=10)
    finally:
        release.set()
    assert 'no answer within 0.5 s' in raised.value.value
    # The queue hands out calls in order: once a call queued after it has run, the
    # given-up call had its turn (and was given up before the threads came free).
    assert loop.run_sync(lambda: run_blocking('mysql', lambda: 'after'), timeout=10) == 'after'
    assert ran == []


@pytest.mark.timeout(30)
def test_a_frozen_redis_server_is_a_server_error_and_the_loop_stays_free(loop, short_timeout,
                                                                       redis_db):
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    client = redis.StrictRedis('127.0.0.1', redis_db.port, socket_timeout=5)
    client.ping()
    ticks = []

    @gen.coroutine
    def tick():
        while True:
            ticks.append(time.time())
            yield gen.sleep(0.05)

    finished = threading.Event()

    def get():
        try:
            return client.get('x')
        finally:
            finished.set()

    @gen.coroutine
    def call():
        loop.spawn_callback(tick)
        yield run_blocking('redis', get)

    try:
        with redis_db.server.paused():
            with pytest.raises(TotoException) as raised:
                loop.run_sync(call, timeout=10)
    finally:
        # The call goes on in its thread after the timeout; its answer comes after SIGCONT.
        assert finished.wait(10)
        client.connection_pool.disconnect()
    assert 'database redis unavailable' in raised.value.value
    assert len(ticks) >= 5  # the IOLoop went on while the call waited


@pytest.mark.timeout(30)
def test_an_outage_raised_by_the_call_is_translated(loop):
    redis = require_library('redis', "pip install 'toto-compat[redis]'")
    client = _redis_client(redis, _refused_port())
    with pytest.raises(TotoException) as raised:
        loop.run_sync(lambda: run_blocking('redis', client.get, 'x'), timeout=10)
    assert raised.value.code == ERROR_SERVER
    assert raised.value.value.startswith('database redis unavailable: ')
