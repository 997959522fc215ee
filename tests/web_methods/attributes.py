"""The handler attributes 1.0.12 gave methods."""
import uuid

from toto.invocation import *


def invoke(handler, parameters):
    return {
        'db_connection': handler.db_connection is not None,
        'db': repr(handler.db),
        'bson': handler.bson is False,
        'msgpack': handler.msgpack is False,
        'response_type': handler.response_type,
        'body': handler.body,
        'registered_event_handlers': handler.registered_event_handlers,
        'headers_only': handler.headers_only,
        'transaction_id': isinstance(handler.transaction_id, uuid.UUID),
        'async': getattr(handler, 'async'),
        'session': handler.session,
    }
