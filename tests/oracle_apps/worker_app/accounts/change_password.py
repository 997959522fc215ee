"""Change an account's password (the json driver of 1.0.12 fails here, fact sheet 9)."""

from toto.invocation import *


@requires('user_id', 'password', 'new_password')
def invoke(handler, parameters):
    handler.db_connection.change_password(parameters['user_id'], parameters['password'],
                                          parameters['new_password'])
    return {'changed': True}
