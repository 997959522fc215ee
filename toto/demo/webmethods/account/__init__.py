"""account.create, account.login and account.logout: the built-ins, offered as apps do."""

import toto.methods.account.create as create  # noqa: F401
import toto.methods.account.login as login  # noqa: F401
import toto.methods.account.logout as logout  # noqa: F401
