"""Worker methods the benchmarks call: ``echo``, the CPU-bound ``burn``, and
``pause`` and ``nap``, which wait (blocking, and as a coroutine)."""
