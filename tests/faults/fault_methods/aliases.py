"""Answers ``{'aliases': True}``.  Imports its own method package, as method modules that
share helpers often do, under two names: ``aliases.fault_methods.echo``,
``aliases.package.aliases.fault_methods.echo`` and every longer spelling name the ``echo``
method too.  ``aliases.Tally`` is a method that is a class."""

import fault_methods  # noqa: F401 - the method package, reachable as aliases.fault_methods
import fault_methods as package  # noqa: F401 - and as aliases.package
import fault_methods.echo  # noqa: F401


class Tally(object):
    """A method that is a class: calls to ``aliases.Tally`` run its ``invoke``."""

    @staticmethod
    def invoke(worker, parameters):
        return {'tally': True}


def invoke(worker, parameters):
    return {'aliases': True}
