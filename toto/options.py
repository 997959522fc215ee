"""Option helpers shared by the toto modules.

Several toto modules define the same ``tornado.options`` names, and an
application may define them too before it imports toto.  ``define`` refuses a
second definition; :func:`safe_define` logs it and moves on, so import order
never breaks a service::

    from toto.options import safe_define

    safe_define('worker_timeout', default=10.0, type=float,
                help='Default worker call timeout in seconds')
"""

from __future__ import absolute_import, division, print_function

import logging

from tornado.options import Error as _OptionError
from tornado.options import define

logger = logging.getLogger('toto.options')


def safe_define(*args, **kwargs):
    """Define a ``tornado.options`` option unless it already exists.

    Takes the same arguments as :func:`tornado.options.define`.  When the name
    is already taken, the existing definition wins and a debug message is
    logged instead of raising.
    """
    try:
        define(*args, **kwargs)
    except _OptionError as error:
        logger.debug('option not redefined: %s', error)
