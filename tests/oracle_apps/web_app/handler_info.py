"""What a method sees of the handler (or of the batch proxy standing in for it)."""

import uuid

from toto.invocation import *


def invoke(handler, parameters):
    info = {
        'class': type(handler).__name__,
        'verb': handler.request.method,
        'response_type': handler.response_type,
        'headers_only': handler.headers_only,
        'async': getattr(handler, 'async'),
        'transaction_id_is_uuid': isinstance(handler.transaction_id, uuid.UUID),
        'session': handler.session is not None,
        'has_db_connection': handler.db_connection is not None,
    }
    if hasattr(handler, 'request_key'):
        info['request_key'] = handler.request_key
    return info
