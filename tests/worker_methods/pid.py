"""Tell which worker process answered, and what the startup function left on it."""

import os


def invoke(worker, parameters):
    return {
        'pid': os.getpid(),
        'service_id': getattr(worker, 'service_id', None),
        'startup_pid': getattr(worker, 'startup_pid', None),
        # The type's name: a connection object need not cross the wire.
        'startup_db_connection': type(getattr(worker, 'startup_db_connection',
                                              'not called')).__name__,
        'same_db_connection': getattr(worker, 'startup_db_connection', None) is
        getattr(worker, 'db_connection', None),
    }
