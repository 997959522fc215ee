from toto.invocation import *


def invoke(handler, parameters):
    return {'status': handler.status, 'has_db': handler.db_connection is not None,
            'db_type': type(handler.db_connection).__name__,
            'startup_saw': getattr(handler, 'startup_saw', None)}
