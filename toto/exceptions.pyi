from typing import Any, Final

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

ERROR_SERVER: Final = 1000
ERROR_INVALID_METHOD: Final = 1001
ERROR_MISSING_METHOD: Final = 1002
ERROR_MISSING_PARAMS: Final = 1003
ERROR_NOT_AUTHORIZED: Final = 1004
ERROR_USER_NOT_FOUND: Final = 1005
ERROR_USER_ID_EXISTS: Final = 1006
ERROR_INVALID_SESSION_ID: Final = 1007
ERROR_INVALID_HMAC: Final = 1008
ERROR_INVALID_RESPONSE_HMAC: Final = 1009
ERROR_INVALID_USER_ID: Final = 1010

class TotoException(Exception):
    # The error code: one of the ERROR_* values, an application's own code,
    # or -1 for the HTTP connection's 'Timeout' and 'No active connections'.
    code: int
    # What went wrong, usually a message (any value the serializer encodes).
    value: Any
    def __init__(self, code: int, value: Any) -> None: ...
