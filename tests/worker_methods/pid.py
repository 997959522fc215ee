"""Tell which worker process answered, and what the startup function left on it."""

import os


def invoke(worker, parameters):
    return {
        'pid': os.getpid(),
        'service_id': getattr(worker, 'service_id', None),
        'startup_pid': getattr(worker, 'startup_pid', None),
        'startup_db_connection': getattr(worker, 'startup_db_connection', 'not called'),
    }
