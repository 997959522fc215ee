"""A TotoServer method package written the way Toto 1.0.12 applications write theirs.

The web differential tests (tests/test_oracle_web.py) serve it with the original
Toto 1.0.12's ``TotoServer`` and with this package's, and send both the same HTTP
requests.  Between them the modules use every ``toto.invocation`` decorator, plain,
``@asynchronous`` and coroutine methods, raw and JSONP answers, sessions and the
built-in account methods (``account``, imported as the templates import them).
As in the original's templates, the package imports its method modules: 1.0.12's
handler finds ``a.b`` by attribute lookup only.
"""

from . import a, account, anonymous, auth_echo, coro, coro_error, defaults, echo, falsy  # noqa: F401
from . import handler_info, hooks_log, increment, jsonp_echo, jsonp_named  # noqa: F401
from . import key_error, later, later_error, later_loop, later_value, maybe_whoami  # noqa: F401
from . import nothing, on_close, on_close_log, oracle_kit_probe, plain_error  # noqa: F401
from . import raw, raw_text, redirect, requires_ab, task, toto_error, whoami  # noqa: F401
from . import startup_info, whoami_param  # noqa: F401
import toto.methods.client_error as client_error  # noqa: F401,E402
