"""Fixtures for the MongoDB driver tests: a SecantusDB server (a SUBSTITUTE for mongod).

No MongoDB server is packaged for Debian; SecantusDB's Python server speaks the MongoDB wire
protocol (OP_MSG) and is what these tests run against (tests/dbservers.py). Its behaviour is
not mongod's in every detail: test names and docstrings say "SecantusDB" where that matters.
What the driver and the legacy layer send, all answered by SecantusDB 0.7.0b3 (checked by
these tests): hello/ping, listIndexes (code 26 for a missing collection), createIndexes
(unique enforced), find with filter/projection/sort/skip/limit, insert, update (``$set``,
``$inc``, replacement, upsert, multi), delete, findAndModify, aggregate (what
``count_documents`` sends), listCollections, dropDatabase.

The server is the run's (``mongodb_server`` of tests/dbfixtures.py); each test gets a
database of its own on it, dropped afterwards. Import the ``*_fixture`` functions into a test
module to use ``database_name`` and ``raw_db`` there.
"""

from __future__ import absolute_import, division, print_function

import os

import pytest

# Client timeouts of the tests' connections: short, so a stopped server fails fast.
CLIENT_TIMEOUTS = {'serverSelectionTimeoutMS': 3000, 'connectTimeoutMS': 3000,
                   'socketTimeoutMS': 5000}


def skip_or_fail(reason):
    """Skip locally; under CI=true a missing server or library is a failure."""
    if os.environ.get('CI') == 'true':
        pytest.fail(reason)
    pytest.skip(reason)


def require_pymongo():
    try:
        import pymongo
    except ImportError:
        skip_or_fail('pymongo is not installed (pip install pymongo)')
    return pymongo


@pytest.fixture(name='database_name')
def database_name_fixture(mongodb_db, mongodb_server):
    """A fresh database name on the run's server, dropped after the test."""
    require_pymongo()
    name = mongodb_db.database
    yield name
    pymongo = require_pymongo()
    client = pymongo.MongoClient('127.0.0.1', mongodb_server.port, **CLIENT_TIMEOUTS)
    try:
        client.drop_database(name)
    except pymongo.errors.PyMongoError:
        pass  # the server may have been stopped by the test
    finally:
        client.close()


@pytest.fixture(name='raw_db')
def raw_db_fixture(mongodb_server, database_name):
    """A plain pymongo Database on the test's database, to read and write raw documents."""
    pymongo = require_pymongo()
    client = pymongo.MongoClient('127.0.0.1', mongodb_server.port, **CLIENT_TIMEOUTS)
    try:
        yield client[database_name]
    finally:
        client.close()
