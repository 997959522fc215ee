import logging
from typing import Any, Callable, Optional, Set, overload

from tornado.concurrent import Future
from typing_extensions import Self

from toto.workerconnection import WorkerConnection, _Addresses, _Compression, _Serialization

logger: logging.Logger

# A result callback: called once with the worker's answer.
_Callback = Callable[[Any], object]

class HTTPWorkerConnection(WorkerConnection):
    timeout: float
    auto_retry_count: int
    compression: Any
    serialization: Any
    serialization_mime: str
    # The worker URLs calls are sent to.
    active_connections: Set[str]
    def __init__(
        self,
        address: _Addresses,
        timeout: float = 10.0,
        compression: _Compression = None,
        serialization: _Serialization = None,
        serialization_mime: str = 'application/pickle',
        auto_retry_count: int = 0,
    ) -> None: ...
    # kind: 'default', 'curl' or 'simple'.
    def configure_client(self, kind: Optional[str] = 'default',
                         max_clients: Optional[int] = None) -> None: ...
    def close(self) -> None: ...
    def configure_tls(
        self,
        ca_file: Optional[str] = None,
        validate_cert: bool = True,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
    ) -> None: ...
    @classmethod
    def instance(cls) -> Self: ...
    def __len__(self) -> int: ...
    def add_connection(self, address: _Addresses) -> None: ...
    def remove_connection(self, address: _Addresses) -> None: ...
    def set_connections(self, addresses: _Addresses) -> None: ...
    # Always a Future. callback= and await_= (or await=) are taken so that
    # code written for ZMQWorkerConnection runs unchanged; await_ changes
    # nothing here.
    @overload
    def invoke(
        self,
        method: str,
        parameters: Any = ...,
        timeout: Optional[float] = None,
        auto_retry_count: Optional[int] = None,
        *,
        callback: Optional[_Callback] = None,
        await_: bool = False,
    ) -> Future[Any]: ...
    # **{'await': True}, the spelling that also runs on Python 2.7.
    @overload
    def invoke(
        self,
        method: str,
        parameters: Any = ...,
        timeout: Optional[float] = None,
        auto_retry_count: Optional[int] = None,
        **kwargs: bool,
    ) -> Future[Any]: ...
