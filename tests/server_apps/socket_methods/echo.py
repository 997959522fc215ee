def invoke(handler, parameters):
    return parameters
