"""``account.login``: start a session for ``user_id`` and ``password``.

The answer is the new session, which the client sends back in ``x-toto-session-id``::

    {"session_id": "...", "expires": 1735689600.0, "user_id": "alice", "key": "..."}

``user_id`` comes back lowercased. ``key`` is there when the server runs with
``--hmac_enabled``: the client signs its requests with it (and checks the answers' signatures).
A wrong user id or password answers ``ERROR_USER_NOT_FOUND`` (1005).

With a driver that blocks (mongodb, redis, mysql, postgres) the database work, password check
included, runs on the database task queue and ``invoke`` returns a Future of the answer.
"""

from __future__ import absolute_import, division, print_function

import six
from tornado import gen

from toto.invocation import requires

__all__ = ['invoke']


def _session_answer(session):
    """The login answer for ``session``: its id, end, user id and, if any, HMAC key."""
    if six.PY2:
        # Built as 1.0.12 built it: a Python 2 dict's order depends on that too.
        answer = {'session_id': session.session_id, 'expires': session.expires,
                  'user_id': session.user_id}
        if session.key:
            answer['key'] = session.key
        return answer
    # In the order 1.0.12's dict wrote the keys on Python 2, so that the JSON text is the same.
    answer = {'expires': session.expires, 'user_id': session.user_id}
    if session.key:
        answer['key'] = session.key
    answer['session_id'] = session.session_id
    return answer


@requires('user_id', 'password')
def invoke(handler, parameters):
    """Log in: a new session for ``user_id`` (any case) if ``password`` is right."""
    if _database_blocks(handler):
        return _login_later(handler, parameters['user_id'], parameters['password'])
    handler.create_session(parameters['user_id'], parameters['password'])
    return _session_answer(handler.session)


@gen.coroutine
def _login_later(handler, user_id, password):
    session = yield handler.create_session_later(user_id, password)
    raise gen.Return(_session_answer(session))


def _database_blocks(handler):
    """True when ``handler`` (a TotoHandler, or a batch entry's proxy of one) should run its
    database work on the database task queue; False for a worker, and the json and none
    drivers, which work as they always did."""
    blocks = getattr(handler, 'database_blocks', None)
    return blocks is not None and blocks()
