import logging
from typing import Any, Callable, Optional

logger: logging.Logger

# tornado.options.define that logs (instead of raising) when the name is
# already defined. At run time it hands *args and **kwargs to define(); the
# parameters here are define()'s.
def safe_define(
    name: str,
    default: Any = None,
    type: Optional[type] = None,
    help: Optional[str] = None,
    metavar: Optional[str] = None,
    multiple: bool = False,
    group: Optional[str] = None,
    callback: Optional[Callable[[Any], None]] = None,
) -> None: ...
