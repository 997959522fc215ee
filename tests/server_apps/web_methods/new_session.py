def invoke(handler, parameters):
    """Start an anonymous session (with --use_cookies its cookie is set)."""
    handler.create_session()
    return {'session_id': handler.session.session_id}
