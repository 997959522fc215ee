"""--startup_function of benchmarks/apps.py: the account the login measure logs in to.

A top-level module: 1.0.12 takes only the first two dotted parts of the option.
"""


def init(worker, db_connection):
    db_connection.create_account('bench', 'secret')
