"""``reject``: always fails, to show what an error answer looks like."""

from toto.invocation import TotoException


def invoke(worker, parameters):
    raise TotoException(4242, 'rejected on purpose')
