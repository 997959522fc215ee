"""FakeConnection (--database=none): no storage; anonymous sessions through a session cache."""

from __future__ import absolute_import, division, print_function

import time

import pytest

import dbsupport
from toto.exceptions import ERROR_INVALID_USER_ID, TotoException
from toto.fakeconnection import FakeConnection, FakeSession


def not_implemented(call, *args, **kwargs):
    with pytest.raises(NotImplementedError) as raised:
        call(*args, **kwargs)
    return str(raised.value)


def test_it_is_a_connection_without_a_database():
    connection = FakeConnection()
    assert connection.db is None
    # 1.0.12 skipped the base __init__, so anonymous sessions failed on anon_session_ttl.
    assert (connection.session_ttl, connection.anon_session_ttl) == (31536000, 86400)
    assert FakeConnection(anon_session_ttl=5).anon_session_ttl == 5


@pytest.mark.parametrize('operation, args', [
    ('create_account', ('alice', 'secret')),
    ('create_session', ('alice', 'secret')),
    ('change_password', ('alice', 'old', 'new')),
    ('generate_password', ('alice',)),
])
def test_account_operations_fail_saying_there_is_no_database(operation, args):
    connection = FakeConnection()
    connection.set_session_cache(dbsupport.DictSessionCache())
    message = not_implemented(getattr(connection, operation), *args)
    assert 'database' in message and 'none' in message


def test_an_empty_user_id_is_still_invalid_user_id():
    with pytest.raises(TotoException) as raised:
        FakeConnection().create_account('', 'secret')
    assert raised.value.code == ERROR_INVALID_USER_ID


def test_without_a_cache_no_session_can_be_kept():
    connection = FakeConnection()
    assert 'set_session_cache' in not_implemented(connection.create_session)
    assert connection.retrieve_session('AAAAAAAAAAAAAAAAAAAAAA') is None
    assert connection.remove_session('AAAAAAAAAAAAAAAAAAAAAA') is None
    assert connection.clear_sessions('alice') is None


def test_anonymous_sessions_live_in_the_cache():
    connection = FakeConnection(anon_session_ttl=300)
    cache = dbsupport.DictSessionCache()
    connection.set_session_cache(cache)
    before = time.time()
    session = connection.create_session(key='k')
    assert isinstance(session, FakeSession)
    assert session.user_id == '' and before + 300 <= session.expires <= time.time() + 300
    session['cart'] = ['apple']
    session.save()
    found = connection.retrieve_session(session.session_id)
    assert found['cart'] == ['apple'] and found.key == 'k'
    other = connection.retrieve_session(session.session_id)
    other['cart'] = ['pear']
    other.save()
    found.refresh()
    assert found['cart'] == ['pear']
    connection.remove_session(session.session_id)
    assert connection.retrieve_session(session.session_id) is None


def test_sessions_carried_in_their_id_work_like_client_cache_sessions():
    connection = FakeConnection()
    connection.set_session_cache(dbsupport.IdCarryingSessionCache())
    session = connection.create_session()
    session['n'] = 1
    session.save()
    assert connection.retrieve_session(session.session_id)['n'] == 1


def test_a_session_has_no_account():
    connection = FakeConnection()
    connection.set_session_cache(dbsupport.DictSessionCache())
    session = connection.create_session()
    assert 'database' in not_implemented(session.get_account)
