import logging
import socket
from types import ModuleType
from typing import Any, Dict, Iterable, List, Optional, Union

from tornado import web
from tornado.concurrent import Future

from toto.service import TotoService
from toto.workerconnection import _Compression, _Serialization

__all__ = ['HostCheck', 'TotoHTTPWorkerHandler', 'TotoHTTPWorkerService', 'make_application']

logger: logging.Logger
# Request Content-Type -> serializer (None: pickle), when the service has no
# serialization_module of its own.
CONTENT_TYPES: Dict[str, Any]

class HostCheck:
    any_host: bool
    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None: ...
    def allows(self, header: Optional[str]) -> bool: ...

class TotoHTTPWorkerHandler(web.RequestHandler):
    method_module: ModuleType
    debug: bool
    db_connection: Any
    db: Any
    def initialize(
        self,
        method_module: ModuleType,
        compression: Any = None,
        serialization: Any = None,
        debug: bool = False,
        max_message_size: Optional[int] = None,
        host_check: Optional[HostCheck] = None,
        db_connection: Any = None,
    ) -> None: ...
    def prepare(self) -> None: ...
    def post(self, *path_args: str) -> Future[None]: ...
    def check_xsrf_cookie(self) -> None: ...

def make_application(
    method_module: Union[ModuleType, str],
    path: str = '/',
    compression: _Compression = None,
    serialization: _Serialization = None,
    debug: bool = False,
    max_message_size: Optional[int] = None,
    allowed_hosts: Optional[Iterable[str]] = None,
    db_connection: Any = None,
) -> web.Application: ...
def server_settings() -> Dict[str, Any]: ...

class TotoHTTPWorkerService(TotoService):
    # Bound by prepare(), in the parent process.
    sockets: List[socket.socket]
    port: int
    def prepare(self) -> None: ...
    def main_loop(self) -> None: ...
