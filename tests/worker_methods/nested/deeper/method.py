"""A method three levels down: ``nested.deeper.method``."""


def invoke(worker, parameters):
    return {'module': __name__, 'parameters': parameters}
