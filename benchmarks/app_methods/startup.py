"""--startup_function of benchmarks/apps.py: the account the login measure logs in to."""


def init(worker, db_connection):
    db_connection.create_account('bench', 'secret')
