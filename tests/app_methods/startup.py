"""The startup module of tests/app_methods: --startup_function=app_methods.startup.init."""
from toto.options import safe_define
from tornado.options import options

safe_define('app_startup_flag', default='unset', type=str, help='set by the conf file')


def init(worker, db_connection):
    worker.startup_saw = {'flag': options.app_startup_flag,
                          'same_db': db_connection is worker.db_connection}
