"""Arithmetic methods, called as ``arith.<name>``."""
