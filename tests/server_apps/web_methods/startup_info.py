import startup


def invoke(handler, parameters):
    return startup.recorded
