"""``@raw_response``: bytes as they are, ``application/octet-stream``."""

from toto.invocation import *


@raw_response
def invoke(handler, parameters):
    return b'raw \x00\x01 bytes'
