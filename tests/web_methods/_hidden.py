def invoke(handler, parameters):
    return 'hidden was called'
