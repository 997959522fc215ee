"""The methods of this server: a call to "a.b" runs invoke() in methods/a/b.py.

The built-in account methods and client_error come from Toto; increment is this project's.
"""

import toto.methods.client_error as client_error  # noqa: F401 - the "client_error" method

from . import account, increment  # noqa: F401
