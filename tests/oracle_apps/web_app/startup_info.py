"""What ``web_app_startup.init`` was given (``db_connection=``, ``application=``)."""

from toto.invocation import *


def invoke(handler, parameters):
    import web_app_startup
    return dict(web_app_startup.STARTED)
