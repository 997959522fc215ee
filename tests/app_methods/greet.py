from toto.invocation import *

# Read at import time: the service imports method modules again once every
# option is read, so this is the final value.
GREETING_AT_IMPORT = options.app_greeting


@requires('name')
@default_parameters({'punctuation': '!'})
def invoke(handler, parameters):
    return {'greeting': '%s, %s%s' % (options.app_greeting, parameters['name'],
                                      parameters['punctuation']),
            'at_import': GREETING_AT_IMPORT}
