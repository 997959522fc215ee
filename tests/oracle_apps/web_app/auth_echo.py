"""``@authenticated`` echo: with ``hmac_enabled`` the request is verified and the answer
signed.  The server benchmark (benchmarks/server.py) measures it."""

from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    return parameters
