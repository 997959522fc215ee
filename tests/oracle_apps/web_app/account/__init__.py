"""The built-in account methods, imported as 1.0.12's ``simple`` template imports them."""

import toto.methods.account.create as create  # noqa: F401
import toto.methods.account.login as login  # noqa: F401
import toto.methods.account.logout as logout  # noqa: F401
import toto.methods.account.update as update  # noqa: F401
