"""The ``startup_function`` of web_app: ``init(db_connection=, application=)``.

It installs before and after hooks on ``TotoHandler`` (with 1.0.12's call signatures,
the handler first) that ``hooks_log`` reports, and checks what it was given.
"""

from toto.handler import TotoHandler

STARTED = {}


def _before(handler, transaction_id, method):
    from web_app import hooks_log
    hooks_log.BEFORE.append(method)


def _after(handler, transaction_id):
    from web_app import hooks_log
    hooks_log.AFTER.append(1)


def init(db_connection=None, application=None):
    STARTED['db_connection'] = db_connection is not None
    STARTED['application'] = type(application).__name__
    TotoHandler.set_before_handler(_before)
    TotoHandler.set_after_handler(_after)
