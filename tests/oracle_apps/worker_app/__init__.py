"""A worker method package written the way Toto 1.0.12 applications write theirs.

The differential tests (tests/test_oracle_worker.py) run it under the original
Toto 1.0.12 and under this package and compare the answers.  As in the
original's templates, the package imports its method modules: the original
worker finds ``a.b`` by attribute lookup only, and imports nothing itself.
"""

from . import a, accounts, app_option, defaults, echo, key_error, later, later_log  # noqa: F401
from . import plain_error, requires_ab, requires_defaulted, startup_info  # noqa: F401
from . import task_coroutine, task_thread, toto_error  # noqa: F401
