"""Worker services with a database: ``worker.db`` in each worker process, as 1.0.12 gave it.

A ``TotoWorkerService`` started with ``--database`` makes its connection in each worker
process (after the fork: pymongo and the SQL clients are not fork-safe) and hands methods
the driver's ``db`` as ``worker.db``, on a real server of each kind (tests/dbfixtures.py).
"""

import pytest

from dbfixtures import require_library
from workerproc import ServiceGroup, call

# kind -> (the fixture with the database, the library, the class worker.db_connection is)
_KINDS = {
    'redis': ('redis_db', 'redis', 'RedisConnection'),
    'mongodb': ('mongodb_db', 'pymongo', 'MongoDBConnection'),
    'mysql': ('mariadb_db', 'pymysql', 'MySQLdbConnection'),
    'postgres': ('postgres_db', 'psycopg2', 'PostgresConnection'),
}


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


@pytest.mark.timeout(90)
@pytest.mark.parametrize('kind', sorted(_KINDS))
def test_each_worker_process_gets_the_database_client_as_worker_db(request, services, kind):
    fixture, library, connection_class = _KINDS[kind]
    require_library(library, "pip install 'toto-compat[%s]'" % kind)
    info = request.getfixturevalue(fixture)
    args = ['--%s=%s' % (name, value) for name, value in sorted(info.options().items())
            if value is not None]
    service = services.start(args, processes=2)
    connection = services.connect(service.address)

    answers = [call(connection, 'database', {'kind': kind}, timeout=10.0) for _ in range(4)]

    assert [answer.get('count') for answer in answers] == [1, 2, 3, 4], \
        (answers, services.logs())
    assert set(answer['connection'] for answer in answers) == set([connection_class])
