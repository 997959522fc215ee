import json as json
import logging as logging
from traceback import format_exc as format_exc
from typing import Any, Callable, List, Mapping, Optional, TypeVar, overload

from tornado.gen import Return as Return
from tornado.gen import coroutine as coroutine
from tornado.options import options as options

from toto.exceptions import *
from toto.tasks import TaskQueue as TaskQueue

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
    'options', 'format_exc', 'coroutine', 'Return', 'engine', 'TaskQueue', 'logging', 'json',
    'invocation_attributes', 'asynchronous', 'anonymous_session', 'authenticated',
    'optionally_authenticated', 'authenticated_with_parameter', 'requires', 'raw_response',
    'jsonp', 'error_redirect', 'default_parameters',
]

_Method = TypeVar('_Method', bound=Callable[..., Any])
_Invoke = Callable[[Any, Any], Any]

logger: logging.Logger
invocation_attributes: List[str]

# tornado.gen.engine where Tornado has it (5.1); a stand-in on Tornado 6.
def engine(fn: Callable[..., Any]) -> Callable[..., None]: ...
# Marks a method (sets fn.asynchronous = True) and returns it as it is.
def asynchronous(fn: _Method) -> _Method: ...
def anonymous_session(fn: _Invoke) -> _Invoke: ...
def authenticated(fn: _Invoke) -> _Invoke: ...
def optionally_authenticated(fn: _Invoke) -> _Invoke: ...
def authenticated_with_parameter(fn: _Invoke) -> _Invoke: ...
def requires(*names: str) -> Callable[[_Invoke], _Invoke]: ...
def raw_response(fn: _Invoke) -> _Invoke: ...
@overload
def jsonp(callback_name: str = ...) -> Callable[[_Invoke], _Invoke]: ...
@overload
def jsonp(callback_name: _Invoke) -> _Invoke: ...
def error_redirect(redirect_map: Mapping[str, str],
                   default: Optional[str] = None) -> Callable[[_Invoke], _Invoke]: ...
def default_parameters(defaults: Mapping[str, Any]) -> Callable[[_Invoke], _Invoke]: ...
