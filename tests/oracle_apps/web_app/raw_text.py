"""``@raw_response`` with the method choosing the content type."""

from toto.invocation import *


@raw_response
def invoke(handler, parameters):
    handler.response_type = 'text/plain; charset=utf-8'
    return 'plain text for %s' % parameters.get('name', 'you')
