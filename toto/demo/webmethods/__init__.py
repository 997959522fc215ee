"""The demo web server's methods: ``hello``, ``counter``, ``worker_sum`` and the account built-ins.

A TotoServer package as 1.0.12 apps write them: one module per method, and
the built-in ``account.*`` methods offered by importing them in
``account/__init__.py``.
"""
