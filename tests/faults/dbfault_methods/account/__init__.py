"""toto's built-in account methods, offered as 1.0.12's templates offered them."""

import toto.methods.account.create as create  # noqa: F401
import toto.methods.account.login as login  # noqa: F401
