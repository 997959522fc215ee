"""The ``--startup_function`` of the tests: leave a mark on each worker it runs for."""

import os


def remember(worker, db_connection=None):
    worker.startup_pid = os.getpid()
    worker.startup_db_connection = db_connection
