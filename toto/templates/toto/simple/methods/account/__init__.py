"""account.create, account.login, account.logout and account.update: Toto's built-ins."""

import toto.methods.account.create as create  # noqa: F401
import toto.methods.account.login as login  # noqa: F401
import toto.methods.account.logout as logout  # noqa: F401
import toto.methods.account.update as update  # noqa: F401
