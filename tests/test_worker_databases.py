"""Worker services with a database: ``worker.db`` in each worker process, as 1.0.12 gave it.

A ``TotoWorkerService`` started with ``--database`` makes its connection in each worker
process (after the fork: pymongo and the SQL clients are not fork-safe) and hands methods
the driver's ``db`` as ``worker.db``, on a real server of each kind (tests/dbfixtures.py).
"""

import pytest

from dbfixtures import require_library
from support import free_port
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


@pytest.mark.timeout(60)
def test_a_database_down_at_start_stops_the_service_with_one_line(services):
    require_library('redis', "pip install 'toto-compat[redis]'")
    port = free_port()  # nothing listens there
    result = services.command(services.service_args('down', processes=1, address='') +
                              ['--database=redis', '--db_host=127.0.0.1',
                               '--db_port=%d' % port])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.returncode == 1, result
    assert len(lines) == 1, result
    assert lines[0].startswith('database redis: cannot connect to 127.0.0.1:%d' % port), result
