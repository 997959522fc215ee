from toto.invocation import *


@authenticated
def invoke(handler, parameters):
    return {'secret': 42}
