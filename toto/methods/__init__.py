"""Toto's built-in methods, to serve from an application's method package.

Import each one where it should be callable; the name it gets there is its method name::

    # methods/__init__.py: calls to "client_error" and "account.*"
    import toto.methods.client_error as client_error
    from methods import account

    # methods/account/__init__.py: calls to "account.create", "account.login", ...
    import toto.methods.account.create as create
    import toto.methods.account.login as login
    import toto.methods.account.logout as logout
    import toto.methods.account.update as update

Importing this package imports all of them, as in Toto 1.0.12 (``toto.methods.account.login``
is reachable after ``import toto.methods``). They need a web server's handler: the session
methods (``account.*``) answer an error when a worker runs them.
"""

from __future__ import absolute_import, division, print_function

from toto.methods import account, client_error  # noqa: F401 - reachable as attributes

__all__ = ['account', 'client_error']
