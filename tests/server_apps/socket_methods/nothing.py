def invoke(handler, parameters):
    return None
