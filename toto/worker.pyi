import logging
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Tuple, Union

from toto.service import TotoService
from toto.service import pid_path as pid_path
from toto.workerconnection import _Compression, _Serialization

__all__ = ['TotoWorker', 'TotoWorkerService', 'find_method', 'error_info',
           'send_control_command', 'service_status', 'pid_path', 'run_router',
           'CONTROL_COMMANDS', 'CONTROL_PREFIX', 'DISPATCH_MODES']

logger: logging.Logger
CONTROL_PREFIX: bytes
CONTROL_COMMANDS: Tuple[str, ...]
# 'balanced' and 'queue': the values of --dispatch.
DISPATCH_MODES: Tuple[str, ...]

# The object whose invoke(worker, parameters) runs the call ``name``, found
# under ``method_module``; AttributeError when there is none.
def find_method(method_module: Any, name: str) -> Any: ...
# The {'code': ..., 'value': ...} error answer for ``error``, logged.
def error_info(error: BaseException, debug: bool = False) -> Dict[str, Any]: ...
def call_startup_function(path: str, worker: Any, db_connection: Any = None) -> Any: ...
def send_control_command(command: str, address: str) -> int: ...
# {'service': {...}, 'router': {...} or None, 'workers': [{...}, ...]}
def service_status(address: str) -> Dict[str, Any]: ...
def run_router(
    bind_address: str,
    socket_address: str,
    max_message_size: Optional[int] = None,
    curve_secret_key: Optional[str] = None,
    curve_authorized_keys: Optional[str] = None,
    on_ready: Optional[Callable[[], object]] = None,
    dispatch: str = 'queue',
    saturation_warning_after: float = 5.0,
    compression: _Compression = None,
    serialization: _Serialization = None,
    control_socket_address: Optional[str] = None,
    max_clients: Optional[int] = 0,
    max_held_bytes: Optional[int] = None,
) -> None: ...

class TotoWorker:
    method_module: ModuleType
    socket_address: str
    control_socket_address: Optional[str]
    debug: bool
    max_message_size: Optional[int]
    dispatch: str
    method_concurrency: int
    # The --database connection (a DBConnection, or an InstancePool of one).
    db_connection: Any
    # The driver's own handle: db_connection.db, or None.
    db: Any
    # 'Initialized', 'Listening', 'Working' or 'Finished', as in 1.0.12.
    status: str
    running: bool
    context: Any
    # Replaceable, as in 1.0.12: how calls are read and answers written.
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]
    calls_answered: int
    errors: int
    last_method: Optional[str]
    started: float
    service_id: int
    def __init__(
        self,
        method_module: Union[ModuleType, str],
        socket_address: str,
        db_connection: Any = None,
        compression: _Compression = None,
        serialization: _Serialization = None,
        control_socket_address: Optional[str] = None,
        debug: bool = False,
        max_message_size: Optional[int] = None,
        saturation_warning_after: float = 5.0,
        dispatch: str = 'queue',
        method_concurrency: int = 100,
    ) -> None: ...
    def error_info(self, error: BaseException) -> Dict[str, Any]: ...
    def log_status(self) -> None: ...
    def status_document(self) -> Dict[str, Any]: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

class TotoWorkerService(TotoService):
    def prepare(self) -> None: ...
    def main_loop(self) -> None: ...
    def run(self) -> None: ...
