"""A package of methods: ``a.b`` is called by its dotted name.  ``a`` has no invoke."""

from . import b  # noqa: F401
