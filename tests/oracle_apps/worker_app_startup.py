"""The ``--startup_function`` of the worker app: ``worker_app_startup.init``.

It defines an option of its own (set by the conf file) and records what it saw
when the worker called it, for the ``startup_info`` method to answer.
"""

from tornado.options import options

from toto.options import safe_define

safe_define('startup_greeting', default='hello from the startup default', type=str,
            help='set by the conf file of the differential tests')
safe_define('startup_count', default=1, type=int, help='an int option set by the conf file')


def init(worker, db_connection):
    worker.startup_record = {
        'startup_greeting': options.startup_greeting,
        'startup_count': options.startup_count,
        'db_connection_is_the_workers': db_connection is worker.db_connection,
    }
