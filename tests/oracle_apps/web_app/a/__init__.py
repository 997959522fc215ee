"""A package of methods: ``a.b`` is called as ``/a/b``, ``/a.b`` or ``{"method": "a.b"}``."""

from . import b  # noqa: F401
