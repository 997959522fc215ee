"""Method package for the handler tests (tests/test_handler_*.py): one small method per module.

Modules that start with ``_`` hold test state and are not callable.
"""
