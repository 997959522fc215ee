from typing import Any, Dict, Final, Optional, Sequence

# Exit statuses of toto-invoke.
EXIT_OK: Final = 0
EXIT_ERROR_ANSWER: Final = 1
EXIT_USAGE: Final = 2
EXIT_TIMEOUT: Final = 3
EXIT_TRANSPORT: Final = 4

# toto-worker; returns the exit status.
def worker_main(argv: Optional[Sequence[str]] = None) -> int: ...
# toto-invoke [options] METHOD [JSON]; returns the exit status.
def invoke_main(argv: Optional[Sequence[str]] = None) -> int: ...
# Defines --transport and --json, the options only toto-worker has.
def define_worker_options() -> None: ...
# The table toto-worker --command=status prints for a service_status() document.
def status_table(status: Dict[str, Any]) -> str: ...
