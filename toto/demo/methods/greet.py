"""``greet``: answer a greeting for ``parameters['name']``."""

from toto.invocation import *  # noqa: F401,F403 - the usual method module preamble


def invoke(worker, parameters):
    return {'greeting': u'Hello, %s!' % parameters.get('name', u'world')}
