"""Helpers for worker method modules.

A method module is a plain module with an ``invoke(worker, parameters)``
function.  Method modules traditionally start with a star import of this
module, which brings :func:`asynchronous` and everything in
:mod:`toto.exceptions`::

    from toto.invocation import *

    @asynchronous
    def invoke(worker, parameters):
        if 'id' not in parameters:
            raise TotoException(ERROR_MISSING_PARAMS, 'id is required')
        schedule_work(parameters['id'])
"""

from __future__ import absolute_import, division, print_function

from toto.exceptions import *  # noqa: F401,F403 - re-exported on purpose
from toto.exceptions import __all__ as _exception_names

__all__ = ['asynchronous'] + list(_exception_names)


def asynchronous(fn):
    """Mark a worker method as asynchronous.

    The worker acknowledges such a call (an answer with no payload, which the
    caller receives as ``None``) before it runs the method, so the caller does
    not wait for the work to finish.
    """
    fn.asynchronous = True
    return fn
