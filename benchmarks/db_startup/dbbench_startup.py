"""The ``startup_function`` of benchmarks/databases.py: the benchmark's accounts, made at start.

    startup_function = 'dbbench_startup.init'
    TOTO_BENCH_ACCOUNTS=bench400:legacy,bench1000:1000 python run_server.py server.conf

Runs under this package (Python 3) and under Toto 1.0.12 (Python 2.7): each account of
``$TOTO_BENCH_ACCOUNTS`` (``user_id:cost``, comma-separated; the password is the user id) is
created through the server's own database connection unless it exists.  Under this package the
cost is the hash's PBKDF2 iterations (``legacy``: 1.0.12's 400-iteration form); 1.0.12 has one
cost only (400 iterations), so there it is ignored.  With ``$TOTO_BENCH_SESSION_FILE`` it
also logs ``$TOTO_BENCH_SESSION_USER`` in and writes the session id to that
file.  Python 2 and 3 alike: no f-strings.
"""

from __future__ import absolute_import, division, print_function

import logging
import os

logger = logging.getLogger('benchmarks.dbbench_startup')


def _set_cost(cost):
    try:
        from toto.secret import set_password_hash_cost
    except ImportError:  # Toto 1.0.12: one cost, 400 iterations
        return
    if cost == 'legacy':
        set_password_hash_cost(legacy=True)
    else:
        set_password_hash_cost(iterations=int(cost), legacy=False)


def init(db_connection=None, application=None):
    for entry in os.environ.get('TOTO_BENCH_ACCOUNTS', '').split(','):
        if not entry:
            continue
        user_id, cost = entry.split(':')
        user_id = str(user_id)
        _set_cost(cost)
        try:
            db_connection.create_account(user_id, user_id)
        except Exception as error:  # taken already (a second process, a second run)
            logger.info('account %s not created: %s', user_id, error)
    # A session made here rather than by account.login: 1.0.12's login fails on mongodb.
    path = os.environ.get('TOTO_BENCH_SESSION_FILE')
    if path:
        user_id = str(os.environ['TOTO_BENCH_SESSION_USER'])
        session = db_connection.create_session(user_id, user_id)
        with open(path + '.new', 'w') as stream:
            stream.write(session.session_id)
        os.rename(path + '.new', path)
