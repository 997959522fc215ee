"""Worker methods the benchmarks call: ``echo`` and the CPU-bound ``burn``."""
