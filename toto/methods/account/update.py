"""``account.update``: change the signed-in account's properties, or its password.

Needs a logged-in session and the ``password`` parameter (``ERROR_MISSING_PARAMS``, 1003,
without it). Each other parameter becomes an account property; the answer lists them::

    {"method": "account.update", "parameters": {"password": "old", "nickname": "al"}}
    -> {"updated_fields": ["nickname"]}

With ``new_password``, the password changes (``password`` must be the current one, else
``ERROR_USER_NOT_FOUND``, 1005) and the answer also has ``"password"`` in ``updated_fields``
and a new session, as :mod:`~toto.methods.account.login` answers it. The change is for the
account of the session: a ``user_id`` parameter, if sent, must name it (``ERROR_NOT_AUTHORIZED``
otherwise) and is never stored as a property, nor is ``account_id``.

As in Toto 1.0.12, ``password`` is checked only when it changes.
"""

from __future__ import absolute_import, division, print_function

from tornado import gen

from toto.exceptions import ERROR_NOT_AUTHORIZED, TotoException
from toto.invocation import authenticated, requires
from toto.methods.account import login

__all__ = ['invoke']

# Parameters that are not account properties: the credentials and the account's identity.
_NOT_PROPERTIES = frozenset(['password', 'new_password', 'user_id', 'account_id'])


@authenticated
@requires('password')
def invoke(handler, parameters):
    """Store the given properties in the account; change its password with ``new_password``."""
    result = {'updated_fields': []}
    user_id = handler.session.user_id
    claimed = parameters.get('user_id')
    # Compared without case: accounts a 1.0.12 MongoDB store kept as typed ("Alice")
    # have sessions that carry the id that way.
    if claimed is not None and (not hasattr(claimed, 'lower')
                                or claimed.lower() != user_id.lower()):
        raise TotoException(ERROR_NOT_AUTHORIZED, 'Not authorized')
    if login._database_blocks(handler):
        return _update_later(handler, parameters, user_id)
    if 'new_password' in parameters:
        handler.db_connection.change_password(user_id, parameters['password'],
                                              parameters['new_password'])
        result['updated_fields'].append('password')
        result.update(login.invoke(handler, {'user_id': user_id,
                                             'password': parameters['new_password']}))
    properties = [name for name in parameters if name not in _NOT_PROPERTIES]
    if properties:
        _save_properties(handler.session, parameters, properties)
        result['updated_fields'].extend(properties)
    return result


@gen.coroutine
def _update_later(handler, parameters, user_id):
    # The same steps as invoke's, with the database work on the database queue.
    result = {'updated_fields': []}
    if 'new_password' in parameters:
        yield handler.run_database(handler.db_connection.change_password, user_id,
                                   parameters['password'], parameters['new_password'])
        result['updated_fields'].append('password')
        answer = yield login.invoke(handler, {'user_id': user_id,
                                              'password': parameters['new_password']})
        result.update(answer)
    properties = [name for name in parameters if name not in _NOT_PROPERTIES]
    if properties:
        yield handler.run_database(_save_properties, handler.session, parameters, properties)
        result['updated_fields'].extend(properties)
    raise gen.Return(result)


def _save_properties(session, parameters, properties):
    account = session.get_account()
    for name in properties:
        account[name] = parameters[name]
    account.save()
