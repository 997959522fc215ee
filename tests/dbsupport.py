"""Helpers for the database and session tests: session caches, cheap password hashes."""

from __future__ import absolute_import, division, print_function

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode

import pytest
import six
from tornado.options import options

import toto.secret
from toto.session import TotoSessionCache


@pytest.fixture(autouse=True)
def cheap_password_hashes():
    """New password hashes cost 1,000 iterations (the default, 100,000, takes 0.3 s on 2.7).

    Import it into a test module to use it there; it is an autouse fixture.
    """
    saved = (options.password_hash_iterations, options.password_hash_legacy)
    toto.secret.set_password_hash_cost(iterations=1000, legacy=False)
    try:
        yield
    finally:
        toto.secret.set_password_hash_cost(*saved)


class DictSessionCache(TotoSessionCache):
    """A session cache that keeps sessions in a dict under their ids (like a redis cache)."""

    def __init__(self):
        self.sessions = {}
        self.removed = []

    def store_session(self, session_data):
        self.sessions[session_data['session_id']] = dict(session_data)
        return None

    def load_session(self, session_id):
        data = self.sessions.get(session_id)
        return dict(data) if data else None

    def remove_session(self, session_id):
        self.removed.append(session_id)
        self.sessions.pop(session_id, None)


class IdCarryingSessionCache(TotoSessionCache):
    """A session cache that keeps the whole session in its id, as ClientCache does.

    Every store gives the session a new id; nothing is kept on the server.
    """

    def store_session(self, session_data):
        data = dict(session_data)
        data.pop('session_id', None)
        state = data.get('state')
        if isinstance(state, bytes):
            data['state'] = state.decode('latin-1')
        encoded = urlsafe_b64encode(json.dumps(data, sort_keys=True).encode('utf-8'))
        return encoded.decode('ascii') if six.PY3 else encoded

    def load_session(self, session_id):
        data = json.loads(urlsafe_b64decode(str(session_id)).decode('utf-8'))
        data['session_id'] = session_id
        return data
