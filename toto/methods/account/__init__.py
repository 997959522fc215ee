"""The built-in account methods: ``create``, ``login``, ``logout`` and ``update``.

They store accounts and sessions through the handler's ``db_connection``; see
:mod:`toto.methods` for how an application serves them.
"""

from __future__ import absolute_import, division, print_function

# login first: create and update call it.
from toto.methods.account import login
from toto.methods.account import create, logout, update

__all__ = ['create', 'login', 'logout', 'update']
