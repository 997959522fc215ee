"""The exception type and error codes that Toto services and workers share.

A worker method signals a failure the caller should see by raising
:class:`TotoException`; the worker answers ``{'error': exception.__dict__}``::

    from toto.exceptions import TotoException, ERROR_NOT_FOUND

    def invoke(worker, parameters):
        raise TotoException(ERROR_NOT_FOUND, 'no such account')
"""

from __future__ import absolute_import, division, print_function

ERROR_SERVER = 1000
ERROR_MISSING_METHOD = 1001
ERROR_MISSING_PARAMS = 1002
ERROR_INVALID_SESSION_ID = 1003
ERROR_USER_NOT_FOUND = 1004
ERROR_USER_HMAC_MISMATCH = 1005
ERROR_INVALID_HMAC = 1006
ERROR_INVALID_RESPONSE_HMAC = 1007
ERROR_USER_ID_EXISTS = 1008
ERROR_INVALID_METHOD = 1009
ERROR_INVALID_USER_ID = 1010

__all__ = [
    'TotoException',
    'ERROR_SERVER',
    'ERROR_MISSING_METHOD',
    'ERROR_MISSING_PARAMS',
    'ERROR_INVALID_SESSION_ID',
    'ERROR_USER_NOT_FOUND',
    'ERROR_USER_HMAC_MISMATCH',
    'ERROR_INVALID_HMAC',
    'ERROR_INVALID_RESPONSE_HMAC',
    'ERROR_USER_ID_EXISTS',
    'ERROR_INVALID_METHOD',
    'ERROR_INVALID_USER_ID',
]


class TotoException(Exception):
    """An error with a numeric ``code`` and a human readable ``value``.

    ``str()`` and ``repr()`` show the instance ``__dict__`` -- exactly the
    mapping a worker sends back as ``{'error': {...}}`` -- so logs and wire
    answers read the same.
    """

    def __init__(self, code, value):
        # Passing both to Exception keeps the exception picklable.
        Exception.__init__(self, code, value)
        self.code = code
        self.value = value

    def __str__(self):
        return repr(self.__dict__)

    def __repr__(self):
        return repr(self.__dict__)
