"""Worker methods for the worker service tests (run by real TotoWorkerService processes).

This package imports none of its submodules: the worker imports each on first call, as
``--method_module`` packages of Toto applications expect.
"""
