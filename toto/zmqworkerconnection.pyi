import logging
from typing import Any, Callable, Dict, Literal, Optional, Set, Union, overload

from tornado.concurrent import Future
from typing_extensions import Self

from toto.workerconnection import WorkerConnection, _Addresses, _Compression, _Serialization

logger: logging.Logger
# The answer of a call that timed out without retry, and of one still
# pending when the connection closed (each call gets a copy).
TIMEOUT_RESULT: Dict[str, str]
CLOSED_RESULT: Dict[str, str]

# A result callback: called once with the worker's answer.
_Callback = Callable[[Any], object]

class ZMQWorkerConnection(WorkerConnection):
    timeout: float
    auto_retry: bool
    compression: Any
    serialization: Any
    def __init__(
        self,
        address: _Addresses,
        timeout: float = 10.0,
        compression: _Compression = None,
        serialization: _Serialization = None,
        auto_retry: bool = False,
    ) -> None: ...
    @classmethod
    def instance(cls) -> Self: ...
    @property
    def active_connections(self) -> Set[str]: ...
    # Calls on the wire to one worker address at once (0: no bound).
    @property
    def max_in_flight(self) -> int: ...
    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None: ...
    def __len__(self) -> int: ...
    # await_=True (or **{'await': True}): a Future for the answer; any
    # callback is ignored. From a thread that runs no IOLoop the object is a
    # concurrent.futures.Future, which is not awaitable: wait on result().
    @overload
    def invoke(
        self,
        method: str,
        parameters: Any = ...,
        callback: Optional[_Callback] = None,
        timeout: float = 0,
        auto_retry: Optional[bool] = None,
        *,
        await_: Literal[True],
    ) -> Future[Any]: ...
    # Without it the answer goes to the callback, if any. The sixth
    # positional argument is the original signature's ``await``.
    @overload
    def invoke(
        self,
        method: str,
        parameters: Any = ...,
        callback: Optional[_Callback] = None,
        timeout: float = 0,
        auto_retry: Optional[bool] = None,
        *legacy_args: bool,
        await_: bool = False,
    ) -> Optional[Future[Any]]: ...
    # **{'await': True}, the spelling that also runs on Python 2.7. A type
    # checker cannot tell which key the dictionary holds, so the result is
    # Any; prefer await_=True in code that is type checked.
    @overload
    def invoke(self, method: str, parameters: Any = ..., **kwargs: bool) -> Any: ...
    def add_connection(self, address: _Addresses) -> None: ...
    def remove_connection(self, address: _Addresses) -> None: ...
    def set_connections(self, addresses: _Addresses) -> None: ...
    def enable_curve(
        self,
        server_key: Union[str, bytes],
        public_key: Union[str, bytes, None] = None,
        secret_key: Union[str, bytes, None] = None,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: Optional[float] = None) -> None: ...
    def close(self) -> None: ...
