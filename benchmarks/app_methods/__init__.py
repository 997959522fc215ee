"""Methods of benchmarks/apps.py, written as Toto 1.0.12 applications write them.

The package imports its methods: the 1.0.12 worker finds a method only
through attributes, and imports nothing itself.
"""
from app_methods import checked, login, plain  # noqa: F401
