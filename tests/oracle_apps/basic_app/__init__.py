"""The part of a Toto 1.0.12 worker app that needs only the worker RPC layer.

Plain, failing, nested and ``@asynchronous`` methods, written as the original's apps
write them (the package imports its method modules).  The differential kit's own tests
run it; the same methods, under the same case ids, are part of ``worker_app``.
"""

from . import a, echo, key_error, later, later_log, plain_error, toto_error  # noqa: F401
