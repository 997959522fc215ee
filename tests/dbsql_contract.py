"""The checks both SQL drivers (mysql, postgres) pass, on a real server.

A test module imports these tests and defines a ``backend`` fixture: an object with
``make(**keywords)`` (a new driver on an empty database, closed after the test),
``admin(sql, *parameters)`` (rows as dicts, on a connection of its own), ``server``
(tests/dbservers.py) and ``name``.
"""

from __future__ import absolute_import, division, print_function

import contextlib
import socket
import sys
import threading
import time

import pytest
import six
from tornado.options import options

from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture
from toto.dbconnection import DatabaseUnavailable
from toto.exceptions import TotoException
from toto.session import TotoSession


class ClosedPort(object):
    """A 127.0.0.1 port bound but not listening while the object lives: connections are
    refused, and no other process can start a server on it meanwhile."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(('127.0.0.1', 0))
        self.port = self._socket.getsockname()[1]

    def close(self):
        self._socket.close()


def _code(call, *args, **kwargs):
    with pytest.raises(TotoException) as raised:
        call(*args, **kwargs)
    return raised.value.code


def _bytes(value):
    return bytes(value) if not isinstance(value, bytes) else value


def test_the_tables_are_made_once_and_a_second_start_keeps_them(backend):
    first = backend.make()
    first.create_account('alice', 'secret')
    layout = backend.layout()
    assert 'session_key' in layout['session']
    assert layout['session']['account_id'] == 'YES'
    second = backend.make()
    assert backend.layout() == layout
    assert second.create_session('alice', 'secret').user_id == 'alice'
    assert [row['user_id'] for row in backend.admin('select user_id from account')] == ['alice']


def test_accounts_are_lowercased_and_unique(backend):
    connection = backend.make()
    connection.create_account('Alice', 'secret')
    rows = backend.admin('select user_id, password from account')
    assert [row['user_id'] for row in rows] == ['alice']
    assert rows[0]['password'].startswith('$p5k2$')
    assert _code(connection.create_account, 'ALICE', 'other') == 1006
    assert _code(connection.create_account, '', 'other') == 1010
    assert connection.create_session('ALICE', 'secret').user_id == 'alice'


def test_extra_account_fields_must_be_columns(backend):
    connection = backend.make()
    backend.admin('alter table account add column nickname varchar(40)')
    connection.create_account('alice', 'secret', nickname='al')
    assert backend.admin('select nickname from account')[0]['nickname'] == 'al'
    for bad in ('no_such_column', 'nickname = 1; drop table account; --', 'nick name'):
        assert _code(connection.create_account, 'bob', 'secret', **{bad: 'x'}) == 1000
    assert len(backend.admin('select user_id from account')) == 1


def test_login_checks_the_password_and_keeps_the_key(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    assert _code(connection.create_session, 'alice', 'wrong') == 1005
    assert _code(connection.create_session, 'nobody', 'secret') == 1005
    assert _code(connection.create_session, 'alice', None) == 1005
    session = connection.create_session('alice', 'secret', key='hmac-key')
    assert len(session.session_id) == 22
    loaded = connection.retrieve_session(session.session_id)
    assert (loaded.user_id, loaded.key) == ('alice', 'hmac-key')
    assert loaded.verify(loaded.hmac('body'), 'body') is loaded
    assert connection.create_session('alice', verify_password=False).user_id == 'alice'
    assert connection.retrieve_session('no-such-session') is None
    assert connection.retrieve_session(None) is None


def test_state_is_saved_and_loaded_and_refresh_reloads(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    session['visits'] = 3
    session['name'] = u'\u00e9l\u00e8ve'
    session.save()
    stored = backend.admin('select state from session')[0]['state']
    assert TotoSession.loads(_bytes(stored)) == {'visits': 3, 'name': u'\u00e9l\u00e8ve'}
    other = connection.retrieve_session(session.session_id)
    assert other['visits'] == 3 and other['name'] == u'\u00e9l\u00e8ve'
    other['visits'] = 4
    other.save()
    session.refresh()
    assert session['visits'] == 4
    connection.remove_session(session.session_id)
    with pytest.raises(TotoException) as raised:
        session.refresh()
    assert raised.value.code == 1007


def test_a_state_that_does_not_load_counts_as_no_session(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    backend.admin('update session set state = %s', backend.binary(b'not a pickle'))
    assert connection.retrieve_session(session.session_id) is None
    # The next, good, session is not affected.
    assert connection.retrieve_session(
        connection.create_session('alice', 'secret').session_id).user_id == 'alice'


def test_anonymous_sessions_are_stored(backend):
    connection = backend.make()
    session = connection.create_session(key='anon-key')
    session['cart'] = [1, 2]
    session.save()
    loaded = connection.retrieve_session(session.session_id)
    assert (loaded.user_id, loaded.key, loaded['cart'], loaded.account_id) == (
        '', 'anon-key', [1, 2], None)
    assert backend.admin('select account_id from session')[0]['account_id'] is None


def test_sessions_expire_and_are_renewed(backend):
    connection = backend.make(session_ttl=1000, session_renew=100)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    assert abs(session.expires - (time.time() + 1000)) < 30
    # Far from its end: not renewed.
    stored = backend.admin('select expires from session')[0]['expires']
    connection.retrieve_session(session.session_id)
    assert backend.admin('select expires from session')[0]['expires'] == stored
    # Within session_renew of its end: renewed to now + session_renew.
    backend.admin('update session set expires = %s', time.time() + 10)
    renewed = connection.retrieve_session(session.session_id)
    assert abs(renewed.expires - (time.time() + 100)) < 30
    assert abs(backend.admin('select expires from session')[0]['expires'] - renewed.expires) < 1
    # Ended: gone, and removed when the user next logs in.
    backend.admin('update session set expires = %s', time.time() - 1)
    assert connection.retrieve_session(session.session_id) is None
    connection.create_session('alice', 'secret')
    assert len(backend.admin('select session_id from session')) == 1


def test_remove_and_clear_sessions(backend):
    connection = backend.make()
    for user_id in ('alice', 'bob'):
        connection.create_account(user_id, 'secret')
    first = connection.create_session('alice', 'secret')
    second = connection.create_session('alice', 'secret')
    bobs = connection.create_session('bob', 'secret')
    connection.remove_session(first.session_id)
    assert connection.retrieve_session(first.session_id) is None
    assert connection.retrieve_session(second.session_id) is not None
    connection.clear_sessions('ALICE')
    assert connection.retrieve_session(second.session_id) is None
    assert connection.retrieve_session(bobs.session_id).user_id == 'bob'


def test_change_and_generate_password(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    assert _code(connection.change_password, 'alice', 'wrong', 'new') == 1005
    connection.change_password('Alice', 'secret', 'new')
    assert _code(connection.create_session, 'alice', 'secret') == 1005
    assert connection.create_session('alice', 'new').user_id == 'alice'
    generated = connection.generate_password('alice')
    assert len(generated) == 10
    assert connection.create_session('alice', generated).user_id == 'alice'
    assert _code(connection.generate_password, 'nobody') == 1005


def test_account_properties_load_and_save(backend):
    connection = backend.make()
    backend.admin('alter table account add column nickname varchar(40)')
    backend.admin('alter table account add column score int')
    connection.create_account('alice', 'secret', nickname='al')
    session = connection.create_session('alice', 'secret')
    account = session.get_account()
    assert account['account_id'] == session.account_id
    assert account['nickname'] == 'al'
    account['score'] = 7
    account['account_id'] = 'ignored'
    account.save()
    assert backend.admin('select score from account')[0]['score'] == 7
    fresh = connection.retrieve_session(session.session_id).get_account()
    assert fresh.load_property('nickname', 'score') is fresh
    assert (fresh['nickname'], fresh['score']) == ('al', 7)
    with pytest.raises(TotoException):
        fresh['password; drop table account'] = 'x'
        fresh.save()
    with pytest.raises(TotoException):
        fresh.load_property('no_such_column')


def test_a_password_column_of_1_0_12_width_is_widened(backend):
    backend.create_1_0_12_tables()
    connection = backend.make()
    assert backend.layout()['password_width'] == 64
    connection.create_account('alice', 'secret')
    assert connection.create_session('alice', 'secret').user_id == 'alice'


def test_without_the_upgrade_1_0_12_tables_stay_as_they_are(backend):
    backend.create_1_0_12_tables()
    before = backend.layout()
    connection = backend.make(schema_upgrade=False)
    assert backend.layout() == before
    # A hash wider than char(48) is refused clearly; 1.0.12's own form fits.
    assert _code(connection.create_account, 'alice', 'secret') == 1000
    import toto.secret
    toto.secret.set_password_hash_cost(legacy=True)
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret', key='lost')
    session['a'] = 1
    session.save()
    loaded = connection.retrieve_session(session.session_id)
    assert (loaded.key, loaded['a']) == (None, 1)  # no column for the key: 1.0.12's behaviour
    assert _code(connection.create_session) == 1000
    # The upgrade on a later start keeps the data.
    upgraded = backend.make()
    assert upgraded.retrieve_session(session.session_id)['a'] == 1
    assert upgraded.create_session(key='k').key == 'k'


def test_session_work_on_other_threads(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    results = []

    def work():
        try:
            session = connection.create_session('alice', 'secret', key='t')
            results.append(connection.retrieve_session(session.session_id).key)
        except Exception as error:  # shown by the assertion below
            results.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ['t'] * 4, results


def test_the_service_recovers_after_the_server_restarts(backend):
    connection = backend.make()
    connection.create_account('alice', 'secret')
    session = connection.create_session('alice', 'secret')
    backend.server.stop()
    try:
        # The outage as the client sees it, not the client library's exception.
        with pytest.raises(TotoException) as raised:
            connection.retrieve_session(session.session_id)
        assert raised.value.code == 1000
        assert raised.value.value.startswith('database %s unavailable: '
                                             % connection.dialect.name)
    finally:
        backend.server.start()
    assert connection.retrieve_session(session.session_id).user_id == 'alice'
    assert connection.create_session('alice', 'secret').user_id == 'alice'


@contextlib.contextmanager
def _options(**values):
    saved = dict((name, getattr(options, name)) for name in values)
    try:
        for name, value in values.items():
            setattr(options, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(options, name, value)


def test_a_down_server_fails_the_check_with_one_line(backend):
    with _options(**backend.options()):
        assert backend.module.check_from_options() is None
        connection = backend.module.connection_from_options()
        try:
            connection.create_account('alice', 'secret')
            assert connection.create_session('alice', 'secret').user_id == 'alice'
        finally:
            connection.close()
    started = time.time()
    with _options(**dict(backend.options(), db_port=backend.closed_port)):
        with pytest.raises(DatabaseUnavailable) as raised:
            backend.module.check_from_options()
    message = str(raised.value)
    assert '\n' not in message
    assert message.startswith('database %s: cannot connect to 127.0.0.1:%d'
                              % (backend.name, backend.closed_port))
    assert time.time() - started < 6
    assert isinstance(message, six.string_types)


def test_a_missing_client_library_names_the_pip_extra(backend):
    saved = dict((name, module) for name, module in sys.modules.items()
                 if name == backend.library or name.startswith(backend.library + '.'))
    try:
        for name in saved:
            sys.modules[name] = None  # "import" now raises ImportError
        sys.modules[backend.library] = None
        with pytest.raises(DatabaseUnavailable) as raised:
            backend.make()
        assert str(raised.value).startswith('database %s needs ' % backend.name)
        assert "pip install 'toto-compat[%s]'" % backend.name in str(raised.value)
    finally:
        sys.modules.pop(backend.library, None)
        sys.modules.update(saved)
