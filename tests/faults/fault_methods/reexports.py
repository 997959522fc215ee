"""Answers ``{'reexports': True}``; imports a module from outside the method package
(``toto.demo.methods.greet``) and one from inside it under another name, as method
modules import what they use."""

import toto.demo.methods.greet  # noqa: F401 - reachable as reexports.toto... before
from fault_methods import echo as echo_again  # noqa: F401


def invoke(worker, parameters):
    return {'reexports': True}
