from typing import Any, Callable, TypeVar

from toto.exceptions import *

__all__ = [
    'asynchronous',
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

_Method = TypeVar('_Method', bound=Callable[..., Any])

# Marks a worker method (sets fn.asynchronous = True) and returns it as it is.
def asynchronous(fn: _Method) -> _Method: ...
