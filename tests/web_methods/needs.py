from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    return 'ok'
