"""Accounts and sessions through ``handler.db_connection`` (``--database=json`` in the tests)."""

from . import anonymous, change_password, create, login, logout, state_get, state_set  # noqa: F401
