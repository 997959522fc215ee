import hooks


def invoke(handler, parameters):
    return len(hooks.closed)
