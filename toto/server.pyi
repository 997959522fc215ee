import logging
import signal
from typing import Any, Optional, Tuple, Union

from toto.handler import TotoHandler as TotoHandler
from toto.service import TotoService, process_count as process_count

__all__ = ['TotoServer', 'TotoHandler', 'process_count']

logger: logging.Logger

class TotoServer(TotoService):
    # The modules the method, socket and event options name (module_options)
    # and the modules of the module.function options (function_options) are
    # imported before the options are read in full.
    module_options: Tuple[str, ...]
    function_options: Tuple[str, ...]
    # SIGTERM and SIGINT (unless ignored) stop the server gracefully.
    stop_signals: Tuple[signal.Signals, ...]
    main_pidfile_index: Union[int, str]
    # The conf file given to the constructor, if any.
    conf_file: Optional[str]
    # The port the server listens on: --port, or the one the system chose
    # for --port=0 once prepare() has bound it.
    port: int
    # conf_file: a tornado.options conf file; kwargs: options by name. Applied
    # in that order, then the command line. Configures TotoHandler (and the
    # websocket handlers when enabled).
    def __init__(self, conf_file: Optional[str] = None, **kwargs: Any) -> None: ...
    # In the parent: check the options and bind the port, once.
    def prepare(self) -> None: ...
    # In each process: serve until SIGTERM or SIGINT, then finish the requests
    # in hand for up to --shutdown_timeout seconds.
    def main_loop(self) -> None: ...
    def finish(self) -> None: ...
    def run(self) -> None: ...
