"""The ``startup_function`` of web_app: ``init(db_connection=, application=)``.

It installs before and after hooks on ``TotoHandler`` (with 1.0.12's call signatures,
the handler first) that ``hooks_log`` reports, and checks what it was given.
"""

import os
import time

from tornado.web import Application

from toto.handler import TotoHandler

STARTED = {}


def _before(handler, transaction_id, method):
    from web_app import hooks_log
    hooks_log.BEFORE.append(method)


def _after(handler, transaction_id):
    from web_app import hooks_log
    hooks_log.AFTER.append(1)


def init(db_connection=None, application=None):
    STARTED['db_connection'] = db_connection is not None
    STARTED['application'] = isinstance(application, Application)
    TotoHandler.set_before_handler(_before)
    TotoHandler.set_after_handler(_after)


def bench_session(db_connection=None, application=None):
    """The ``startup_function`` of benchmarks/server.py: one session known to every process.

    ``$TOTO_BENCH_SESSION`` is ``user_id:session_id:key``; the session is stored in this
    process's database (the ``json`` driver keeps one per process) with the key as a
    native ``str``: 1.0.12 signs with whatever type it is given, and fails on Python 2's
    ``unicode``, which is what it reads back from a json file.
    """
    user_id, session_id, key = os.environ['TOTO_BENCH_SESSION'].split(':')
    db_connection._store_session(session_id, {
        'user_id': str(user_id), 'expires': time.time() + 365 * 24 * 3600.0,
        'session_id': str(session_id), 'key': str(key)})
