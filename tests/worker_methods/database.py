"""Counts through ``worker.db``, the database client a worker process gets from --database.

Each call adds one record (or one to a counter) and answers how many there are, using the
calls Toto apps make on each driver's ``db``: redis-py's ``incr``, pymongo 2's ``insert``
and ``count`` (``toto._mongolegacy``), torndb's and the PostgreSQL pool's ``execute`` and
``get``.
"""


def invoke(worker, parameters):
    db = worker.db
    kind = parameters['kind']
    if kind == 'redis':
        count = db.incr('toto-test-counter')
    elif kind == 'mongodb':
        db.things.insert({'n': 1})
        count = db.things.count()
    else:
        db.execute('create table if not exists things (n int)')
        db.execute('insert into things (n) values (%s)', 1)
        count = db.get('select count(*) as c from things').c
    return {'count': int(count), 'db': type(db).__name__,
            'connection': type(worker.db_connection).__name__}
