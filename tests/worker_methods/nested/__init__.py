"""Nested method packages: ``nested.deeper.method``."""
