"""The exception type and error codes of Toto methods, workers and servers.

A method signals a failure its caller should see by raising
:class:`TotoException` with a code; the caller receives
``{'error': {'code': ..., 'value': ...}}``.  The codes below are those of
Toto 1.0.12, which the official clients know by number (the JavaScript
client, for one, logs its user out on ``ERROR_NOT_AUTHORIZED``)::

    from toto.exceptions import TotoException, ERROR_MISSING_PARAMS

    def invoke(handler, parameters):
        if 'id' not in parameters:
            raise TotoException(ERROR_MISSING_PARAMS, 'Missing parameters: id')

Applications use their own codes beside these; ``-1`` is what the HTTP
worker connection and the client session cache use for their own failures.
"""

from __future__ import absolute_import, division, print_function

#: Any exception from a method that is not a TotoException; the value is its text.
ERROR_SERVER = 1000
#: The method name does not lead to a method (``Cannot call '<name>'.``).
ERROR_INVALID_METHOD = 1001
#: The request names no method (``Missing method.``).
ERROR_MISSING_METHOD = 1002
#: ``@requires`` found parameters missing (``Missing parameters: a, b``).
ERROR_MISSING_PARAMS = 1003
#: The method needs a session with a user, and there is none (``Not authorized``).
ERROR_NOT_AUTHORIZED = 1004
#: Login or password check failed (``Invalid user ID or password``).
ERROR_USER_NOT_FOUND = 1005
#: ``create_account`` for a user id that exists (``User ID already in use.``).
ERROR_USER_ID_EXISTS = 1006
#: Defined by 1.0.12 and never raised by it; free for applications.
ERROR_INVALID_SESSION_ID = 1007
#: A request's ``x-toto-hmac`` does not match its session key (``Invalid HMAC``).
ERROR_INVALID_HMAC = 1008
#: Defined by 1.0.12 for clients checking a response's signature.
ERROR_INVALID_RESPONSE_HMAC = 1009
#: ``create_account`` with an empty user id (``Invalid user ID.``).
ERROR_INVALID_USER_ID = 1010

__all__ = [
    'TotoException',
    'ERROR_SERVER',
    'ERROR_INVALID_METHOD',
    'ERROR_MISSING_METHOD',
    'ERROR_MISSING_PARAMS',
    'ERROR_NOT_AUTHORIZED',
    'ERROR_USER_NOT_FOUND',
    'ERROR_USER_ID_EXISTS',
    'ERROR_INVALID_SESSION_ID',
    'ERROR_INVALID_HMAC',
    'ERROR_INVALID_RESPONSE_HMAC',
    'ERROR_INVALID_USER_ID',
]


class TotoException(Exception):
    """An error with a numeric ``code`` and a ``value`` that says what went wrong.

    ``str()`` and ``repr()`` show the instance ``__dict__`` -- the mapping a
    caller receives as ``{'error': {...}}`` -- so logs and answers read the
    same, as in 1.0.12.  Unlike 1.0.12's, the exception also passes its code
    and value to ``Exception``, so it survives pickling (1.0.12's ``args`` was
    empty, and an unpickled copy could not be rebuilt).
    """

    def __init__(self, code, value):
        Exception.__init__(self, code, value)
        self.code = code
        self.value = value

    def __str__(self):
        return self._as_dict_text()

    def __repr__(self):
        return self._as_dict_text()

    def _as_dict_text(self):
        # What str(self.__dict__) gave in 1.0.12 on a Python 2 without hash
        # randomization: code first, then value, then anything else set on
        # the exception, whatever the interpreter's dict order.
        names = [name for name in ('code', 'value') if name in self.__dict__]
        names += [name for name in self.__dict__ if name not in ('code', 'value')]
        return '{%s}' % ', '.join('%r: %r' % (name, self.__dict__[name]) for name in names)
