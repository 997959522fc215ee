"""No session, no database: answered while the database is away."""
from toto.invocation import *


def invoke(handler, parameters):
    return {'pong': True}
