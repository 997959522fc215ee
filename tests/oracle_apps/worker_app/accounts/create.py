"""Create an account; every parameter besides the id and password is stored with it."""

from toto.invocation import *


@requires('user_id', 'password')
def invoke(handler, parameters):
    values = dict((str(name), value) for name, value in parameters.items()
                  if name not in ('user_id', 'password'))
    handler.db_connection.create_account(parameters['user_id'], parameters['password'], **values)
    return {'created': parameters['user_id']}
