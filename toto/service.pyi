import logging
import signal
from typing import Any, Optional, Tuple, Union

logger: logging.Logger

# The pidfile of process i, from --pidfile: toto.daemon.pid -> toto.daemon.<i>.pid.
def pid_path(i: Union[int, str]) -> str: ...
# How many service processes --processes asks for (negative: one per CPU).
def process_count() -> int: ...

class TotoService:
    # The index of the service process running main_loop().
    service_id: int
    # Options naming modules (module_options) or module.function
    # (function_options) that are imported before the options are read in full.
    module_options: Tuple[str, ...]
    function_options: Tuple[str, ...]
    # Signals that stop the service (SIGINT only when it is not ignored).
    stop_signals: Tuple[signal.Signals, ...]
    main_pidfile_index: Union[int, str]
    # conf_file: a tornado.options conf file; kwargs: options by name. Applied
    # in that order, then the command line.
    def __init__(self, conf_file: Optional[str] = None, **kwargs: Any) -> None: ...
    def prepare(self) -> None: ...
    def main_loop(self) -> None: ...
    def finish(self) -> None: ...
    def run(self) -> None: ...
