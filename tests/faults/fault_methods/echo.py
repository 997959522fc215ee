"""Answer the parameters unchanged."""


def invoke(worker, parameters):
    return parameters
