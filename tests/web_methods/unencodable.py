from toto.invocation import *


def invoke(handler, parameters):
    return {'set': set([1])}
