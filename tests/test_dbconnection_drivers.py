"""--database=mongodb|redis|mysql|postgres: options -> driver, start checks, missing pieces.

A driver module that is in this tree is used against a real server (tests/dbfixtures.py); one
that is not yet says "not available in this release" as before.
"""

from __future__ import absolute_import, division, print_function

import importlib
import sys
import time

import pytest

import dbservers
from dbfixtures import require_library
from toto.dbconnection import (DatabaseUnavailable, check_configured_database,
                               configured_connection)

# --database value -> (driver module, its connection class, server kind, client library).
DRIVERS = {
    'mongodb': ('toto.mongodbconnection', 'MongoDBConnection', 'mongodb', 'pymongo'),
    'mysql': ('toto.mysqldbconnection', 'MySQLdbConnection', 'mariadb', 'pymysql'),
    'postgres': ('toto.postgresconnection', 'PostgresConnection', 'postgres', 'psycopg2'),
    'redis': ('toto.redisconnection', 'RedisConnection', 'redis', 'redis'),
}


def _driver_here(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if module_name.rsplit('.', 1)[-1] in str(error):
            return None
        raise
    return module if hasattr(module, 'connection_from_options') else None


def _close(connection):
    if callable(getattr(type(connection), 'close', None)):
        connection.close()  # the driver's own: pymongo's Database has no close()
        return
    db = getattr(connection, 'db', None)
    for name in ('close', 'closeall'):
        if callable(getattr(db, name, None)):
            getattr(db, name)()
            return
    pool = getattr(db, 'connection_pool', None)
    if pool is not None:
        pool.disconnect()


def test_the_new_options_are_defined_with_their_defaults():
    from tornado.options import options
    assert options.database_timeout == 10.0
    assert isinstance(options.database_timeout, float)
    assert options.database_schema_upgrade is True
    assert options.database_threads == 4


@pytest.mark.parametrize('name', sorted(DRIVERS))
def test_each_database_makes_its_driver_from_the_options(name, request, database_options):
    module_name, class_name, kind, library = DRIVERS[name]
    module = _driver_here(module_name)
    if module is None:
        database_options['database'] = name
        for call in (configured_connection, check_configured_database):
            with pytest.raises(DatabaseUnavailable) as raised:
                call()
            assert 'not available in this release' in str(raised.value)
        return
    require_library(library, "pip install 'toto-compat[%s]'" % name)
    info = request.getfixturevalue(kind + '_db')
    database_options.update(info.options())
    database_options.update({'session_ttl': 1234, 'anon_session_ttl': 56})
    check_configured_database()
    connection = configured_connection()
    try:
        assert type(connection).__name__ == class_name
        assert isinstance(connection, getattr(module, class_name))
        assert (connection.session_ttl, connection.anon_session_ttl) == (1234, 56)
    finally:
        _close(connection)


def test_redis_takes_1_0_12s_arguments_and_its_default_port(database_options, redis_db):
    require_library('redis', "pip install 'toto-compat[redis]'")
    database_options.update(redis_db.options())
    database_options.update({'redis_database': 3, 'database_timeout': 2.5})
    connection = configured_connection()
    kwargs = connection.db.connection_pool.connection_kwargs
    assert (kwargs['host'], kwargs['port'], kwargs['db']) == ('127.0.0.1', redis_db.port, 3)
    assert kwargs['socket_timeout'] == 2.5
    database_options['db_port'] = 0
    assert configured_connection().db.connection_pool.connection_kwargs['port'] == 6379


@pytest.mark.timeout(30)
@pytest.mark.parametrize('name', sorted(DRIVERS))
def test_a_server_that_is_not_there_stops_the_start_with_one_line(name, database_options):
    module_name, _, kind, library = DRIVERS[name]
    if _driver_here(module_name) is None:
        pytest.skip('%s: no driver in this tree yet' % name)
    require_library(library, "pip install 'toto-compat[%s]'" % name)
    port = dbservers.free_port()  # nothing listens there
    database_options.update({'database': name, 'db_host': '127.0.0.1', 'db_port': port,
                             'mysql_database': 'x', 'mysql_user': 'x', 'mysql_password': 'x',
                             'postgres_database': 'x', 'postgres_user': 'x',
                             # what the check may wait for an answer (MongoDB waits it all)
                             'database_timeout': 1.0})
    started = time.time()
    with pytest.raises(DatabaseUnavailable) as raised:
        check_configured_database()
    assert time.time() - started < 10
    message = str(raised.value)
    assert name in message and str(port) in message
    assert '\n' not in message


def test_a_missing_client_library_names_the_pip_extra(database_options, monkeypatch):
    monkeypatch.setitem(sys.modules, 'redis', None)  # "import redis" now fails
    database_options['database'] = 'redis'
    for call in (configured_connection, check_configured_database):
        with pytest.raises(DatabaseUnavailable) as raised:
            call()
        assert str(raised.value) == \
            "database redis needs redis: pip install 'toto-compat[redis]'"


def test_an_import_error_inside_a_driver_is_not_hidden(database_options, monkeypatch,
                                                       tmp_path):
    import toto.dbconnection as dbconnection
    with open(str(tmp_path / 'toto_broken_driver.py'), 'w') as source:
        source.write('import toto_no_such_library_here\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dbconnection._DRIVER_MODULES, 'redis', 'toto_broken_driver')
    database_options['database'] = 'redis'
    with pytest.raises(ImportError) as raised:
        configured_connection()
    assert 'toto_no_such_library_here' in str(raised.value)


def test_a_driver_module_gets_the_options_through_its_two_functions(database_options,
                                                                    monkeypatch, tmp_path):
    import toto.dbconnection as dbconnection
    with open(str(tmp_path / 'toto_stand_in_driver.py'), 'w') as source:
        source.write('calls = []\n'
                     'def connection_from_options():\n'
                     '    calls.append("connection")\n'
                     '    return "the connection"\n'
                     'def check_from_options():\n'
                     '    calls.append("check")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dbconnection._DRIVER_MODULES, 'postgres', 'toto_stand_in_driver')
    database_options['database'] = 'postgres'
    check_configured_database()
    assert configured_connection() == 'the connection'
    assert importlib.import_module('toto_stand_in_driver').calls == ['check', 'connection']


def test_unknown_names_still_list_every_database(database_options):
    database_options['database'] = 'cassandra'
    with pytest.raises(DatabaseUnavailable) as raised:
        configured_connection()
    for name in ('json', 'mongodb', 'mysql', 'none', 'postgres', 'redis'):
        assert name in str(raised.value)

