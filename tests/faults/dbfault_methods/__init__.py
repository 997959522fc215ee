"""Methods of the database fault tests (``--method_module=dbfault_methods``).

``account.create`` and ``account.login`` are toto's own; ``whoami`` is an authenticated call
that reads the session (a database read) and counts its calls in the session's state (a
database write)::

    account.login {"user_id": "alice", "password": "pw"}    -> {"session_id": ...}
    whoami (x-toto-session-id: ...)                          -> {"user_id": "alice", "calls": 1}
"""
