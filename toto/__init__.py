"""toto-compat: the Toto worker RPC layer on Python 2.7 and Python 3.

Applications keep importing the modules they always used::

    from toto.workerconnection import WorkerConnection

    conn = WorkerConnection.instance()   # configured by --worker_address etc.
    conn.invoke('module.method', {'a': 1}, callback=on_result)
"""

version = '0.2.0'
__version__ = version
