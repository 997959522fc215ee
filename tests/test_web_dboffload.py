"""The web server keeps answering while a blocking database is slow or frozen.

For each blocking driver (mongodb, redis, mysql, postgres), on a real server behind a real
TotoHandler: sessions that a session decorator needs are loaded on the database task queue
before the method runs, and the built-in account methods do their database work there. A
frozen server (SIGSTOP) makes those requests answer error 1000 "database <name> unavailable"
within --database_timeout while requests that do not touch the database are answered at once;
after SIGCONT the next login works. Loading the session early changes no answer.
"""

from __future__ import absolute_import, division, print_function

import json
import threading
import time

import pytest

from dbfixtures import require_library
from dbsupport import DictSessionCache, cheap_password_hashes  # noqa: F401 - autouse
from websupport import WebServer

ERROR_SERVER = 1000
ERROR_NOT_AUTHORIZED = 1004
ERROR_USER_NOT_FOUND = 1005
TIMEOUT = 2.0  # --database_timeout for these tests
SLACK = 1.5    # what a timed-out request may take beyond it (loaded machine)

_LIBRARIES = {'redis': ('redis', "pip install 'toto-compat[redis]'"),
              'mariadb': ('pymysql', "pip install 'toto-compat[mysql]'"),
              'postgres': ('psycopg2', "pip install 'toto-compat[postgres]'"),
              'mongodb': ('pymongo', "pip install 'toto-compat[mongodb]'")}
_NAMES = {'redis': 'redis', 'mariadb': 'mysql', 'postgres': 'postgres', 'mongodb': 'mongodb'}


class _Backend(object):
    def __init__(self, kind, info, connection):
        self.kind = kind
        self.name = _NAMES[kind]
        self.info = info
        self.connection = connection
        self.calls = []      # (thread, session id) of each retrieve_session
        self.creations = []  # (thread, user id) of each create_session
        self.called = threading.Event()
        retrieve = connection.retrieve_session
        create = connection.create_session

        # They record where the framework loads and makes sessions; the database calls
        # themselves are real.
        def recorded(session_id):
            self.calls.append((threading.current_thread(), session_id))
            self.called.set()
            return retrieve(session_id)
        connection.retrieve_session = recorded

        def recorded_creation(*args, **kwargs):
            self.creations.append((threading.current_thread(), args[0] if args else None))
            return create(*args, **kwargs)
        connection.create_session = recorded_creation


@pytest.fixture(params=sorted(_LIBRARIES))
def backend(request, database_options):
    module, install = _LIBRARIES[request.param]
    require_library(module, install)
    info = request.getfixturevalue(request.param + '_db')
    database_options.update(info.options())
    database_options['database_timeout'] = TIMEOUT
    from toto.dbconnection import configured_connection
    connection = configured_connection()
    try:
        yield _Backend(request.param, info, connection)
    finally:
        close = getattr(type(connection), 'close', None)
        if close is not None:
            close(connection)


@pytest.fixture
def server(backend):
    with WebServer(db_connection=backend.connection, method_module='offload_methods') as web:
        yield web


def _result(answer):
    assert 'result' in answer.json, answer.json
    return answer.json['result']


def _signup(server, user_id='alice', password='secret'):
    return _result(server.call('account.create', {'user_id': user_id, 'password': password}))


def _session(session_id):
    return {'x-toto-session-id': session_id}


class _InFlight(threading.Thread):
    """One request sent from another thread, timed."""

    def __init__(self, server, method, parameters=None, headers=None):
        super(_InFlight, self).__init__(name='in-flight ' + method)
        self.daemon = True
        self.arguments = (method, parameters, headers)
        self.server = server
        self.answer = self.error = None
        self.elapsed = None
        self.start()

    def run(self):
        started = time.time()
        try:
            self.answer = self.server.call(*self.arguments)
        except Exception as error:  # reported by result()
            self.error = error
        self.elapsed = time.time() - started

    def result(self):
        self.join(TIMEOUT + 30)
        assert not self.is_alive(), 'the request did not end'
        assert self.error is None, self.error
        return self.answer, self.elapsed


def _assert_unavailable(backend, answer, elapsed):
    error = answer.json['error']
    assert error['code'] == ERROR_SERVER, error
    assert error['value'].startswith('database %s unavailable: ' % backend.name), error
    assert elapsed < TIMEOUT + SLACK, elapsed


@pytest.mark.timeout(120)
def test_a_frozen_database_answers_unavailable_in_time_other_requests_meanwhile_and_recovers(
        backend, server):
    session_id = _signup(server)['session_id']
    assert _result(server.call('whoami', headers=_session(session_id)))['user_id'] == 'alice'
    with backend.info.server.paused():
        backend.called.clear()
        authenticated = _InFlight(server, 'whoami', headers=_session(session_id))
        assert backend.called.wait(10), 'the session was never looked up'
        login = _InFlight(server, 'account.login', {'user_id': 'alice', 'password': 'secret'})
        # Both wait on the frozen database; a request that does not use it is answered now.
        started = time.time()
        assert _result(server.call('ping')) == {'pong': True}
        assert time.time() - started < 1.0
        assert authenticated.is_alive()
        answer, elapsed = authenticated.result()
        _assert_unavailable(backend, answer, elapsed)
        answer, elapsed = login.result()
        _assert_unavailable(backend, answer, elapsed)
    # Running again: the next login works, on the same server process and connection.
    login = _result(server.call('account.login', {'user_id': 'alice', 'password': 'secret'}))
    assert login['user_id'] == 'alice'
    whoami = _result(server.call('whoami', headers=_session(login['session_id'])))
    assert whoami['session_id'] == login['session_id']


def _answers(server, requests):
    return [(server.call(method, parameters, headers).body) for method, parameters, headers
            in requests]


@pytest.mark.timeout(120)
def test_loading_the_session_early_changes_no_answer(backend, server):
    connection = backend.connection
    # No renewals: each look-up would move the expiry, and the answers carry it.
    connection.session_renew = connection.anon_session_renew = 0
    session_id = _signup(server)['session_id']
    ttl = connection.session_ttl
    connection.session_ttl = -60  # a session that has ended a minute ago
    try:
        expired_id = _result(server.call('account.login', {'user_id': 'alice',
                                                           'password': 'secret'}))['session_id']
    finally:
        connection.session_ttl = ttl
    requests = []
    for sid in (session_id, 'no-such-session-id', expired_id):
        requests.extend([('whoami', None, _session(sid)),
                         ('optional', {'x': 1}, _session(sid)),
                         ('optional', {}, _session(sid)),
                         ('with_param', {'session_id': sid, 'y': 2}, None)])
    requests.append(('anon', None, _session(session_id)))
    requests.append(('whoami', None, None))
    del backend.calls[:]
    early = _answers(server, requests)
    on_loop = [call for call in backend.calls if call[0] is server._loop_thread.thread]
    assert backend.calls and not on_loop, backend.calls
    # One look-up per request that names a session, "none" remembered by the decorator.
    assert len(backend.calls) == len(requests) - 1
    connection.blocking = False  # the way the json driver loads sessions: in the decorator
    try:
        del backend.calls[:]
        late = _answers(server, requests)
        assert backend.calls and all(call[0] is server._loop_thread.thread
                                     for call in backend.calls)
    finally:
        del connection.blocking
    assert early == late
    assert json.loads(early[4].decode('utf-8'))['error']['code'] == ERROR_NOT_AUTHORIZED


def test_no_database_threads_keeps_the_work_on_the_ioloop_as_1_0_12_did(backend, server,
                                                                         database_options):
    database_options['database_threads'] = 0
    session_id = _signup(server)['session_id']
    assert backend.creations and backend.creations[-1][0] is server._loop_thread.thread
    del backend.calls[:]
    assert _result(server.call('whoami', None, _session(session_id)))
    assert backend.calls and all(call[0] is server._loop_thread.thread
                                 for call in backend.calls)


@pytest.mark.timeout(120)
def test_the_account_methods_work_on_the_queue(backend, server):
    session_id = _signup(server)['session_id']
    answer = server.call('account.create', {'user_id': 'alice', 'password': 'x'}).json
    assert answer['error']['code'] == 1006
    answer = server.call('account.login', {'user_id': 'alice', 'password': 'wrong'}).json
    assert answer['error']['code'] == ERROR_USER_NOT_FOUND
    updated = _result(server.call('account.update', {'password': 'secret',
                                                     'new_password': 'better'},
                                  headers=_session(session_id)))
    assert updated['updated_fields'] == ['password']
    assert updated['user_id'] == 'alice'
    new_id = updated['session_id']
    assert _result(server.call('account.logout', headers=_session(new_id))) == {
        'authenticated': False}
    answer = server.call('whoami', headers=_session(new_id)).json
    assert answer['error']['code'] == ERROR_NOT_AUTHORIZED
    assert _result(server.call('account.login', {'user_id': 'alice', 'password': 'better'}))


@pytest.mark.timeout(120)
def test_sessions_in_a_memory_cache_are_served_while_the_database_is_frozen(backend, server):
    cache = DictSessionCache()
    backend.connection.set_session_cache(cache)
    session_id = _signup(server)['session_id']
    assert session_id in cache.sessions
    with backend.info.server.paused():
        backend.called.clear()
        login = _InFlight(server, 'account.login', {'user_id': 'alice', 'password': 'secret'})
        started = time.time()
        whoami = _result(server.call('whoami', headers=_session(session_id)))
        assert whoami['user_id'] == 'alice'
        assert time.time() - started < 1.0
        answer, elapsed = login.result()
        _assert_unavailable(backend, answer, elapsed)
    assert _result(server.call('account.login', {'user_id': 'alice', 'password': 'secret'}))


@pytest.mark.timeout(180)
def test_a_stopped_database_answers_unavailable_in_time_and_recovers_when_it_starts(
        backend, server):
    _signup(server)
    database = backend.info.server
    database.stop()
    try:
        for method, parameters in [('account.login', {'user_id': 'alice', 'password': 'secret'}),
                                   ('account.create', {'user_id': 'bob', 'password': 'pw'})]:
            started = time.time()
            answer = server.call(method, parameters)
            _assert_unavailable(backend, answer, time.time() - started)
            assert _result(server.call('ping')) == {'pong': True}
    finally:
        database.start()
    # Same connection, same server process: a new account and its login work.
    session_id = _signup(server, 'carol', 'pw')['session_id']
    assert _result(server.call('whoami', headers=_session(session_id)))['user_id'] == 'carol'


@pytest.mark.timeout(120)
def test_anonymous_sessions_are_made_on_the_queue(backend, server):
    loop_thread = server._loop_thread.thread
    first = server.call('anon').json
    assert first['result'] == {'user_id': ''}
    session_id = first['session']['session_id']
    again = server.call('anon', headers=_session(session_id)).json
    assert again['session']['session_id'] == session_id
    unknown = server.call('anon', headers=_session('no-such-session-id')).json
    assert unknown['session']['session_id'] not in ('no-such-session-id', session_id)
    assert unknown['result'] == {'user_id': ''}
    assert len(backend.creations) == 2, backend.creations
    assert not [call for call in backend.creations + backend.calls if call[0] is loop_thread]
    with backend.info.server.paused():
        anonymous = _InFlight(server, 'anon')
        started = time.time()
        assert _result(server.call('ping')) == {'pong': True}
        assert time.time() - started < 1.0
        answer, elapsed = anonymous.result()
        _assert_unavailable(backend, answer, elapsed)
    assert server.call('anon').json['result'] == {'user_id': ''}
