# -*- coding: utf-8 -*-
"""TotoSession, TotoAccount and TotoSessionCache: the storage-side session objects."""

from __future__ import absolute_import, division, print_function

import datetime
import hmac
import json
import re
from base64 import b64encode
from hashlib import sha1

import pytest
import six

from toto.exceptions import ERROR_INVALID_HMAC, TotoException
from toto.session import SESSION_ID_LENGTH, TotoAccount, TotoSession, TotoSessionCache

# What Toto 1.0.12 on Python 2.7 stored for this state (cPickle.dumps, protocol 0):
# {'name': 'bob', u'city': u'café €', 'n': 3, 'ratio': 0.5, 'tags': ['a', u'b'],
#  'raw': 'caf\xc3\xa9' (UTF-8 bytes), 'when': datetime(2015, 7, 1, 12, 30, 5),
#  'none': None, 'ok': True}
PYTHON2_STATE = (
    b"(dp1\nS'raw'\np2\nS'caf\\xc3\\xa9'\np3\nsVcity\np4\nVcaf\xe9 \\u20ac\np5\nsS'none'\np6\n"
    b"NsS'ratio'\np7\nF0.5\nsS'name'\np8\nS'bob'\np9\nsS'tags'\np10\n(lp11\nS'a'\naVb\nasS'ok'"
    b"\np12\nI01\nsS'when'\np13\ncdatetime\ndatetime\np14\n(S'\\x07\\xdf\\x07\\x01\\x0c\\x1e"
    b"\\x05\\x00\\x00\\x00'\ntRp15\nsS'n'\nI3\ns.")


def make_session(state=None, key=None, stored_key=None):
    session_data = {'user_id': 'alice', 'expires': 1234.5, 'session_id': 'abc'}
    if state is not None:
        session_data['state'] = TotoSession.dumps(state)
    if stored_key is not None:
        session_data['key'] = stored_key
    return TotoSession(None, session_data, key=key)


# -- ids -------------------------------------------------------------------------------

def test_generated_ids_are_22_urlsafe_characters_and_distinct():
    ids = set(TotoSession.generate_id() for _ in range(200))
    assert len(ids) == 200
    for session_id in ids:
        assert isinstance(session_id, str)
        assert len(session_id) == SESSION_ID_LENGTH == 22
        assert re.match(r'^[A-Za-z0-9_-]{22}$', session_id)


# -- attributes and the dict-like face --------------------------------------------------

def test_attributes_come_from_the_session_data():
    session = make_session(state={'a': 1}, key='k1')
    assert (session.user_id, session.expires, session.session_id) == ('alice', 1234.5, 'abc')
    assert session.state == {'a': 1}
    assert session.key == 'k1'


def test_key_argument_wins_over_stored_key_and_missing_key_is_none():
    assert make_session(key='given', stored_key='stored').key == 'given'
    assert make_session(stored_key='stored').key == 'stored'
    assert make_session().key is None
    assert make_session(key=False).key is None


def test_missing_or_empty_state_is_an_empty_dict():
    assert make_session().state == {}
    assert TotoSession(None, {'user_id': '', 'expires': 1, 'session_id': 's',
                              'state': ''}).state == {}


def test_item_access_gives_none_for_missing_and_falsy_values():
    session = make_session(state={'zero': 0, 'empty': '', 'no': False, 'list': [], 'yes': 7})
    for key in ('zero', 'empty', 'no', 'list', 'missing'):
        assert session[key] is None
    assert session['yes'] == 7
    # ``in`` still tells a stored falsy value from a missing one.
    assert 'zero' in session and 'missing' not in session


def test_set_delete_and_iterate_over_state():
    session = make_session()
    session['a'] = 1
    session['b'] = 2
    del session['a']
    del session['never there']
    assert session.state == {'b': 2}
    assert list(session) == ['b']
    assert list(session.iterkeys()) == ['b']


def test_session_data_round_trips_and_carries_the_key_only_when_set():
    session = make_session(state={'n': 1}, key='secret-key')
    data = session.session_data()
    assert set(data) == {'user_id', 'expires', 'session_id', 'state', 'key'}
    copy = TotoSession(None, data)
    assert (copy.user_id, copy.expires, copy.session_id, copy.key, copy.state) == (
        'alice', 1234.5, 'abc', 'secret-key', {'n': 1})
    assert 'key' not in make_session().session_data()


def test_str_shows_the_session():
    text = str(make_session(state={'n': 1}))
    assert "'id': 'abc'" in text and "'n': 1" in text


def test_base_get_account_refresh_and_save_are_unimplemented():
    session = make_session()
    for call, name in ((session.get_account, 'get_account'), (session.refresh, 'refresh'),
                       (session.save, 'save')):
        with pytest.raises(Exception) as raised:
            call()
        assert str(raised.value) == 'Unimplemented operation: %s' % name


# -- state serialization -----------------------------------------------------------------

STATE = {
    'text': u'café € \U0001f600 \\u00e9 back\\slash\nnew line\r\x00',
    'bytes': b'\x00\xff\xe9 raw',
    'numbers': [1, 2.5, -3, 10 ** 20],
    'nested': {'set': set([1, 2]), 'tuple': (1, u'é'), 'none': None, 'flag': True},
    'when': datetime.datetime(2015, 7, 1, 12, 30, 5, 123),
    'day': datetime.date(2020, 2, 29),
}


def test_default_pickle_is_protocol_0_and_ascii():
    data = TotoSession.dumps(STATE)
    assert isinstance(data, bytes)
    assert not data.startswith(b'\x80')  # no PROTO opcode: protocol 0
    assert all(byte < 128 for byte in bytearray(data))
    assert TotoSession.loads(data) == STATE


def test_state_loads_from_text_as_json_stores_give_it():
    text = TotoSession.dumps(STATE).decode('latin-1')
    assert TotoSession.loads(text) == STATE
    assert TotoSession.loads(six.text_type(text)) == STATE
    assert TotoSession.loads(bytearray(TotoSession.dumps(STATE))) == STATE


def test_state_written_by_toto_1_0_12_on_python_2_loads():
    state = TotoSession.loads(PYTHON2_STATE)
    assert state['city'] == u'café €'
    assert state['name'] == 'bob' and state['n'] == 3 and state['ratio'] == 0.5
    assert state['tags'] == ['a', u'b'] and state['none'] is None and state['ok'] is True
    assert state['when'] == datetime.datetime(2015, 7, 1, 12, 30, 5)
    if six.PY2:
        assert state['raw'] == b'caf\xc3\xa9'
    else:
        # A Python 2 str holding UTF-8 becomes text on Python 3.
        assert state['raw'] == u'café'
    # ... and it goes back out as an ASCII pickle that loads the same.
    assert TotoSession.loads(TotoSession.dumps(state)) == state


@pytest.mark.skipif(six.PY2, reason='Python 2 str is bytes; nothing to decode')
def test_python_2_bytes_that_are_not_utf8_come_back_through_surrogateescape():
    state = TotoSession.loads(b"(dp1\nS'blob'\np2\nS'\\xff\\x00\\xe9'\np3\ns.")
    assert state['blob'].encode('utf-8', 'surrogateescape') == b'\xff\x00\xe9'


DEFAULT_SERIALIZER = TotoSession._TotoSession__serializer


def test_set_serializer_swaps_the_state_format():
    class JSONText(object):
        @staticmethod
        def dumps(data):
            return json.dumps(data)

        @staticmethod
        def loads(data):
            return json.loads(data.decode('utf-8'))

    try:
        TotoSession.set_serializer(JSONText)
        session = make_session(state={'a': [1, u'é']})
        assert session.session_data()['state'] == '{"a": [1, "\\u00e9"]}'
        assert session.state == {'a': [1, u'é']}
    finally:
        TotoSession.set_serializer(DEFAULT_SERIALIZER)
    assert TotoSession.loads(TotoSession.dumps({'back': 1})) == {'back': 1}
    assert TotoSession.dumps({'x': 1}).startswith(b'(dp')


# -- HMAC ----------------------------------------------------------------------------------

def expected_hmac(key, signature):
    return b64encode(hmac.new(key, signature, sha1).digest()).decode('ascii')


def test_hmac_is_base64_hmac_sha1_of_the_signature_with_the_key():
    session = make_session(key='session-key')
    mac = session.hmac('POST/api{"a": 1}')
    assert mac == expected_hmac(b'session-key', b'POST/api{"a": 1}')
    assert isinstance(mac, str)
    assert session.hmac(b'POST/api{"a": 1}') == mac
    # A key loaded from JSON is text on both Pythons.
    assert make_session(key=u'session-key').hmac('POST/api{"a": 1}') == mac


def test_verify_accepts_the_right_mac_and_returns_the_session():
    session = make_session(key='k')
    mac = expected_hmac(b'k', b'GET/x?y=1')
    assert session.verify(mac, 'GET/x?y=1') is session
    assert session.verify(mac.encode('ascii'), b'GET/x?y=1') is session


@pytest.mark.parametrize('key, mac, signature', [
    ('k', 'wrong', 'GET/x'),
    ('k', expected_hmac(b'k', b'GET/x'), 'GET/other'),
    (None, expected_hmac(b'k', b'GET/x'), 'GET/x'),
    ('k', '', 'GET/x'),
    ('k', None, 'GET/x'),
    ('k', expected_hmac(b'k', b''), ''),
])
def test_verify_rejects_a_bad_mac_with_invalid_hmac(key, mac, signature):
    with pytest.raises(TotoException) as raised:
        make_session(key=key).verify(mac, signature)
    assert raised.value.code == ERROR_INVALID_HMAC
    assert raised.value.value == 'Invalid HMAC'


# -- TotoAccount ------------------------------------------------------------------------

class RecordingAccount(TotoAccount):
    """An account over a dict that records each load and save."""

    def __init__(self, stored):
        super(RecordingAccount, self).__init__(session=None)
        self.stored = stored
        self.loads = []
        self.saves = []

    def _load_property(self, *keys):
        self.loads.append(keys)
        return dict((key, self.stored[key]) for key in keys if key in self.stored)

    def _save_property(self, *keys):
        self.saves.append(sorted(keys))
        for key in keys:
            self.stored[key] = self._properties[key]


def test_account_loads_a_key_on_first_read_only():
    account = RecordingAccount({'name': 'Al', 'zero': 0})
    assert 'name' not in account
    assert account['name'] == 'Al'
    assert account['name'] == 'Al'
    assert account.loads == [('name',)]
    assert 'name' in account


def test_account_gives_none_for_missing_and_falsy_values():
    account = RecordingAccount({'zero': 0})
    assert account['zero'] is None
    assert account['missing'] is None
    assert 'zero' in account and 'missing' not in account


def test_account_load_property_loads_in_bulk_and_returns_itself():
    account = RecordingAccount({'a': 1, 'b': 2, 'c': 3})
    assert account.load_property('a', 'b') is account
    assert sorted(account) == ['a', 'b'] and sorted(account.iterkeys()) == ['a', 'b']
    assert account['a'] == 1 and account['b'] == 2
    assert account.loads == [('a', 'b')]


def test_account_save_writes_the_modified_keys_once():
    account = RecordingAccount({'a': 1})
    account['b'] = 2
    account['c'] = 3
    account.save()
    account.save()
    assert account.saves == [['b', 'c'], []]
    assert account.stored == {'a': 1, 'b': 2, 'c': 3}
    assert 'modified' in str(account)


def test_base_account_storage_is_unimplemented():
    account = TotoAccount(session=None)
    with pytest.raises(Exception) as raised:
        account['x']
    assert str(raised.value) == 'Unimplemented operation: _load_property'
    account['x'] = 1
    with pytest.raises(Exception) as raised:
        account.save()
    assert str(raised.value) == 'Unimplemented operation: _save_property'


# -- TotoSessionCache -------------------------------------------------------------------

def test_base_cache_stores_and_loads_nothing_and_cannot_remove():
    cache = TotoSessionCache()
    with pytest.raises(Exception, match='Unimplemented operation: store_session'):
        cache.store_session({'session_id': 's', 'expires': 1})
    with pytest.raises(Exception, match='Unimplemented operation: load_session'):
        cache.load_session('s')
    # 1.0.12 had no remove_session at all, so DBConnection.remove_session failed with an
    # AttributeError; the base now documents that a cached session lives until it expires.
    assert cache.remove_session('s') is None
