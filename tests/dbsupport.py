"""Helpers for the database and session tests.

Importing this module makes ``toto.secret`` and ``toto.tasks`` importable: while the branch
that adds them is not merged yet, small stand-ins with their documented API (PBKDF2 ``$p5k2$``
hashes, an InstancePool that lends its instance per call) take their place, for the tests only.
"""

from __future__ import absolute_import, division, print_function

import hmac
import json
import sys
import types
from base64 import urlsafe_b64decode, urlsafe_b64encode

import six


def _install_secret_stand_in():
    try:
        import toto.secret  # noqa: F401
        return
    except ImportError:
        pass
    import pbkdf2
    module = types.ModuleType('toto.secret')

    def password_hash(secret):
        return pbkdf2.crypt(secret)

    def verify_password(secret, password_hash):
        computed = pbkdf2.crypt(secret, password_hash)
        return hmac.compare_digest(computed.encode('ascii'), password_hash.encode('ascii'))

    module.password_hash = password_hash
    module.verify_password = verify_password
    module.STAND_IN = True
    sys.modules['toto.secret'] = module
    import toto
    toto.secret = module


def _install_tasks_stand_in():
    try:
        import toto.tasks  # noqa: F401
        return
    except ImportError:
        pass
    from six.moves.queue import Queue
    module = types.ModuleType('toto.tasks')

    class InstancePool(object):
        def __init__(self, instances, default_queue='pool'):
            self._pool = Queue()
            for instance in (instances if hasattr(instances, '__iter__') else [instances]):
                self._pool.put(instance)

        def __getattr__(self, name):
            def call(*args, **kwargs):
                instance = self._pool.get()
                try:
                    return getattr(instance, name)(*args, **kwargs)
                finally:
                    self._pool.put(instance)
            return call

    module.InstancePool = InstancePool
    module.STAND_IN = True
    sys.modules['toto.tasks'] = module
    import toto
    toto.tasks = module


_install_secret_stand_in()
_install_tasks_stand_in()

from toto.session import TotoSessionCache  # noqa: E402 -- after the stand-ins


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
