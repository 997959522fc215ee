"""@raw_response: the bytes given, with the content type given (if any)."""
from toto.invocation import *


@raw_response
def invoke(handler, parameters):
    if parameters.get('type'):
        handler.response_type = parameters['type']
    return parameters.get('text', 'raw bytes')
