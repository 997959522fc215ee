"""Method package for tests/test_web_dboffload.py: the built-in account methods, a method that
never touches the database, and one method per session decorator."""

from toto.methods import account  # noqa: F401 - account.create, login, logout, update
