# -*- coding: utf-8 -*-
"""JSONConnection: the stored layout, the file, threads, and 1.0.12's defects fixed."""

from __future__ import absolute_import, division, print_function

import json
import os
import stat
import threading
import time

import pytest

from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse
from toto.exceptions import ERROR_INVALID_SESSION_ID, ERROR_USER_NOT_FOUND, TotoException
from toto.jsondbconnection import JSONAccount, JSONConnection, JSONSession
from toto.session import TotoSession


@pytest.fixture
def path(tmpdir):
    return str(tmpdir.join('store.json'))


def read_json(path):
    with open(path, 'rb') as stored:
        return json.loads(stored.read().decode('utf-8'))


def test_the_stored_layout_is_that_of_1_0_12(path):
    connection = JSONConnection(path, persistent=True)
    connection.create_account('Alice', 'secret', color='red', additional_values={'age': 30})
    session = connection.create_session('alice', 'secret')
    session['n'] = 1
    session.save()
    account = session.get_account()
    account['nickname'] = 'al'
    account.save()
    stored = read_json(path)
    assert set(stored) == {'account', 'session'}
    assert stored['account']['alice'] == {
        'user_id': 'alice', 'password': stored['account']['alice']['password'],
        'color': 'red', 'age': 30, 'properties': {'nickname': 'al'}}
    document = stored['session'][session.session_id]
    assert set(document) == {'user_id', 'expires', 'session_id', 'state'}
    assert document['user_id'] == 'alice' and document['session_id'] == session.session_id
    # state: the protocol 0 pickle, as text.
    assert document['state'].startswith('(dp')
    assert TotoSession.loads(document['state']) == {'n': 1}


def test_a_new_session_is_stored_without_state_and_with_its_key():
    connection = JSONConnection()
    session = connection.create_session(key='k')
    assert connection.get('session', session.session_id) == {
        'user_id': '', 'expires': session.expires, 'session_id': session.session_id, 'key': 'k'}


def test_save_keeps_the_hmac_key():
    # 1.0.12's JSON session dropped `key` on save, so HMAC failed after the first save.
    connection = JSONConnection()
    session = connection.create_session(key='k')
    session['n'] = 1
    session.save()
    assert connection.get('session', session.session_id)['key'] == 'k'
    assert connection.retrieve_session(session.session_id).key == 'k'


def test_a_persistent_file_is_read_back_by_a_new_connection(path):
    writer = JSONConnection(path, persistent=True)
    writer.create_account('alice', 'secret')
    session = writer.create_session('alice', 'secret')
    session['n'] = 2
    session.save()
    reader = JSONConnection(path, persistent=True)
    assert reader.retrieve_session(session.session_id)['n'] == 2
    assert reader.create_session('alice', 'secret').user_id == 'alice'


def test_a_persistent_store_may_start_without_a_file(path):
    connection = JSONConnection(path, persistent=True)
    assert not os.path.exists(path)
    connection.create_account('alice', 'secret')
    assert 'alice' in read_json(path)['account']


def test_an_empty_file_is_an_empty_store(path):
    open(path, 'wb').close()
    assert JSONConnection(path).get('account', 'alice') is None


def test_reading_a_missing_file_without_persistent_is_an_error(path):
    with pytest.raises((IOError, OSError)):
        JSONConnection(path)


def test_without_persistent_the_file_is_only_read(path):
    with open(path, 'wb') as stored:
        stored.write(b'{"account": {}}')
    connection = JSONConnection(path)
    connection.create_account('alice', 'secret')
    assert read_json(path) == {'account': {}}
    connection.clear()
    assert connection.get('account', 'alice') is None


def test_clear_keeps_a_persistent_store(path):
    connection = JSONConnection(path, persistent=True)
    connection.create_account('alice', 'secret')
    connection.clear()
    assert connection.get('account', 'alice') is not None


def test_rewrites_replace_the_file_whole_and_leave_no_temporary_files(path, tmpdir):
    with open(path, 'wb') as stored:
        stored.write(b'{}')
    os.chmod(path, 0o640)
    connection = JSONConnection(path, persistent=True)
    for index in range(5):
        connection.create_account('user%d' % index, 'secret')
    assert sorted(read_json(path)['account']) == ['user%d' % i for i in range(5)]
    assert os.listdir(str(tmpdir)) == ['store.json']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_new_file_is_readable_by_its_owner_only(path):
    JSONConnection(path, persistent=True).create_account('alice', 'secret')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(path, tmpdir):
    connection = JSONConnection(path, persistent=True)
    connection.create_account('alice', 'secret')
    before = read_json(path)
    with pytest.raises(TypeError):
        connection.set('bad', 'value', object())  # not JSON
    assert read_json(path) == before
    assert os.listdir(str(tmpdir)) == ['store.json']


def test_threads_share_one_persistent_connection(path):
    connection = JSONConnection(path, persistent=True)
    errors = []
    session_ids = []

    def work(index):
        try:
            user_id = 'user%d' % index
            connection.create_account(user_id, 'secret')
            for _ in range(3):
                session = connection.create_session(user_id, 'secret')
                session['owner'] = user_id
                session.save()
                session_ids.append(session.session_id)
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    stored = read_json(path)
    assert len(stored['account']) == 8
    assert len(stored['session']) == len(session_ids) == 24
    reloaded = JSONConnection(path)
    for session_id in session_ids:
        session = reloaded.retrieve_session(session_id)
        assert session['owner'] == session.user_id


def test_get_and_set_follow_a_path_and_none_deletes():
    connection = JSONConnection()
    connection.set('a', 'b', 'c', 1)
    assert connection.get('a', 'b', 'c') == 1
    connection.set('a', 'b', d=2, c=None)
    assert connection.get('a', 'b') == {'d': 2}
    assert connection.get('x', 'y') is None
    # What get returns is a copy: changing it does not change the store.
    connection.get('a', 'b')['d'] = 3
    assert connection.get('a', 'b', 'd') == 2


# -- accounts -----------------------------------------------------------------------------

def test_change_and_generate_password_work(path):
    # 1.0.12: TypeError (_update_password took 2 arguments and was given 3).
    connection = JSONConnection(path, persistent=True)
    connection.create_account('alice', 'old')
    connection.change_password('alice', 'old', 'new')
    generated = connection.generate_password('alice')
    assert JSONConnection(path).create_session('alice', generated).user_id == 'alice'


def test_account_properties_are_kept_per_key_across_sessions():
    connection = JSONConnection()
    connection.create_account('alice', 'secret')
    first = connection.create_session('alice', 'secret').get_account()
    second = connection.create_session('alice', 'secret').get_account()
    assert isinstance(first, JSONAccount) and JSONSession.JSONAccount is JSONAccount
    first['a'] = 1
    second['b'] = 2
    first.save()
    second.save()
    # Each save writes its own keys only, so neither overwrote the other.
    assert connection.get('account', 'alice', 'properties') == {'a': 1, 'b': 2}


def test_account_id_is_not_a_settable_property():
    connection = JSONConnection()
    connection.create_account('alice', 'secret')
    account = connection.create_session('alice', 'secret').get_account()
    account['account_id'] = 5
    account.save()
    assert 'account_id' not in account
    assert connection.get('account', 'alice', 'properties') is None


def test_saving_properties_of_an_anonymous_session_is_user_not_found():
    connection = JSONConnection()
    account = connection.create_session().get_account()
    assert account['anything'] is None
    account['x'] = 1
    with pytest.raises(TotoException) as raised:
        account.save()
    assert raised.value.code == ERROR_USER_NOT_FOUND
    assert connection.get('account') is None


# -- sessions -----------------------------------------------------------------------------

def test_a_save_after_removal_does_not_bring_the_session_back():
    connection = JSONConnection()
    session = connection.create_session()
    connection.remove_session(session.session_id)
    session['n'] = 1
    session.save()
    assert connection.retrieve_session(session.session_id) is None


def test_refresh_of_a_removed_session_is_invalid_session_id():
    connection = JSONConnection()
    session = connection.create_session()
    connection.remove_session(session.session_id)
    with pytest.raises(TotoException) as raised:
        session.refresh()
    assert raised.value.code == ERROR_INVALID_SESSION_ID


def test_clear_sessions_ends_every_session_of_the_user():
    connection = JSONConnection()
    connection.create_account('alice', 'secret')
    connection.create_account('bob', 'secret')
    alice = [connection.create_session('alice', 'secret') for _ in range(3)]
    bob = connection.create_session('bob', 'secret')
    connection.clear_sessions('ALICE')
    assert all(connection.retrieve_session(s.session_id) is None for s in alice)
    assert connection.retrieve_session(bob.session_id).user_id == 'bob'


def test_creating_a_session_drops_ended_ones():
    connection = JSONConnection()
    old = connection.create_session()
    connection.set('session', old.session_id, 'expires', time.time() - 1)
    connection.create_session()
    assert connection.get('session', old.session_id) is None


def test_with_expire_sessions_false_ended_sessions_are_kept_as_in_1_0_12():
    connection = JSONConnection(expire_sessions=False)
    old = connection.create_session()
    connection.set('session', old.session_id, 'expires', time.time() - 1)
    connection.create_session()
    assert connection.retrieve_session(old.session_id) is not None
