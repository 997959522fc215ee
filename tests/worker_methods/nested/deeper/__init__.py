"""The middle level of ``nested.deeper.method``."""
