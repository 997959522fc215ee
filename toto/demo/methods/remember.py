"""``remember``: an asynchronous method, acknowledged before it runs."""

import logging

from toto.invocation import asynchronous

logger = logging.getLogger('toto.demo')


@asynchronous
def invoke(worker, parameters):
    logger.debug('remembering %r', parameters)
