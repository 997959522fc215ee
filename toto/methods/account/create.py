"""``account.create``: make an account, then log in to it.

It requires ``user_id`` and ``password``; the answer is :mod:`~toto.methods.account.login`'s.
A taken user id answers ``ERROR_USER_ID_EXISTS`` (1006), an empty one ``ERROR_INVALID_USER_ID``
(1010). User ids are stored lowercased, passwords as hashes.

**Every other parameter is stored in the account too**, as in Toto 1.0.12: a client may set
any field the database driver has (a SQL column, a key of the JSON document), including ones
the application trusts, such as ``is_admin``. Applications can name the fields a client may set::

    import toto.methods.account.create as create

    create.account_fields = ('nickname', 'email')   # None (the default): every parameter

Either way, :data:`RESERVED_FIELDS` are never taken from the client: the drivers keep their
own data under those names (the JSON driver's account properties, the SQL drivers' key).
"""

from __future__ import absolute_import, division, print_function

from tornado import gen

from toto.invocation import requires
from toto.methods.account import login

__all__ = ['RESERVED_FIELDS', 'account_fields', 'invoke']

#: The parameters (besides ``user_id`` and ``password``) stored in a new account; None: all.
account_fields = None

#: Names the drivers use for their own data; a client's values for them are dropped.
RESERVED_FIELDS = frozenset(['account_id', 'properties'])


def _stored_fields(parameters):
    allowed = account_fields
    return dict((name, value) for name, value in parameters.items()
                if name not in RESERVED_FIELDS and (allowed is None or name in allowed))


@requires('user_id', 'password')
def invoke(handler, parameters):
    """Create the account ``user_id`` with ``password`` and the other fields, and log in."""
    if login._database_blocks(handler):
        return _create_later(handler, parameters)
    handler.db_connection.create_account(parameters['user_id'], parameters['password'],
                                         _stored_fields(parameters))
    return login.invoke(handler, parameters)


@gen.coroutine
def _create_later(handler, parameters):
    # The account's password hash (100,000 rounds) is made on the database queue too.
    yield handler.run_database(handler.db_connection.create_account, parameters['user_id'],
                               parameters['password'], _stored_fields(parameters))
    answer = yield login.invoke(handler, parameters)
    raise gen.Return(answer)
