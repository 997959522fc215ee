# -*- coding: utf-8 -*-
"""ClientCache and AESCipher: sessions kept inside their ids, readable by Toto 1.0.12 and back."""

from __future__ import absolute_import, division, print_function

import json
import os
import pickle
import subprocess
import sys
import threading
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode

import pytest
import six

from dbsupport import cheap_password_hashes  # noqa: F401 - autouse
from toto.exceptions import TotoException
from toto.jsondbconnection import JSONConnection
from toto.session import TotoSession

try:
    import Cryptodome  # noqa: F401
except ImportError:
    pytest.importorskip('Crypto', reason='AESCipher needs pycryptodome (the test extra has it)')

from toto.clientsessioncache import HMAC_SIZE, AESCipher, ClientCache  # noqa: E402

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
AES_KEY = 'an AES-128 key..and its own IV..'
HMAC_KEY = 'the hmac key of the tests'
FAR_FUTURE = 4102444800.0  # 2100-01-01

# Made by Toto 1.0.12 (Python 2.7, pycryptodome) with AES_KEY and HMAC_KEY from
# {'user_id': u'alice', 'expires': FAR_FUTURE, 'session_id': 'OLDSESSIONIDxxxxxxxxxx',
#  'key': 'hmac-key-of-alice', 'state': TotoSession.dumps({'counter': 2, 'city': u'café'})}
ID_FROM_1_0_12 = (
    'FhTUbmzBk33y3Ja61bo5sYpnwWI23sJ_vFVtpfOCbnyFjQB7EzViHPfvAQOvToa4guHPbJGYYOSve9vyrQFoUX8V'
    'Y_iN_o-Dr6Fv-hzZEOYvKVSKYrMe05HG9-yk8HwPiiMlTANyiMwcqq2GlRZB4NLdwHookcQcWzyHkbeo3e5fKRJp'
    '3eIoIOsgWj_b_3VyctCKfW4K90avH9crcZCdF-fsLtQcSfayYHqi0A3fiiu2FBaynJeF32CGqizImAckUaSJUrcg'
    'rKBm7_9BmtKjBBB0D7FQZMJVfaSClKeQvvTTE9Eb69XfPiRulMgxhgte5IZWF_tgyt_fxfnyTUJafuFZg4k=')


def make_cache(**kwargs):
    return ClientCache(AESCipher(AES_KEY), HMAC_KEY, **kwargs)


def session_data(expires=FAR_FUTURE, state=None, **extra):
    data = {'user_id': 'alice', 'expires': expires, 'session_id': 'OLD-ID',
            'state': TotoSession.dumps({'counter': 1} if state is None else state)}
    data.update(extra)
    return data


def invalid_id_error(cache, session_id):
    with pytest.raises(TotoException) as caught:
        cache.load_session(session_id)
    return caught.value


# -- AESCipher ---------------------------------------------------------------------------

def test_aes_cipher_is_plain_cbc_with_pkcs7_padding():
    # NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt), first block.
    key = bytes(bytearray.fromhex('2b7e151628aed2a6abf7158809cf4f3c'))
    iv = bytes(bytearray.fromhex('000102030405060708090a0b0c0d0e0f'))
    plain = bytes(bytearray.fromhex('6bc1bee22e409f96e93d7e117393172a'))
    encrypted = AESCipher(key, iv).encrypt(plain)
    assert encrypted[:16] == bytes(bytearray.fromhex('7649abac8119b246cee98e9b12e9197d'))
    assert len(encrypted) == 32  # a whole block of padding after a whole block
    assert AESCipher(key + iv).encrypt(plain) == encrypted  # the IV at the end of the key


def test_aes_cipher_round_trips_every_length_and_text():
    cipher = AESCipher(AES_KEY)
    for length in range(0, 40):
        data = os.urandom(length)
        encrypted = cipher.encrypt(data)
        assert len(encrypted) % 16 == 0 and len(encrypted) > length
        assert cipher.decrypt(encrypted) == data
    assert cipher.decrypt(cipher.encrypt(u'café')) == u'café'.encode('utf-8')


def test_aes_cipher_refuses_bad_sizes_and_bad_padding():
    with pytest.raises(ValueError):
        AESCipher('too short for key and iv')
    with pytest.raises(ValueError):
        AESCipher('0123456789abcdef', iv='short')
    cipher = AESCipher(AES_KEY)
    with pytest.raises(ValueError):
        cipher.decrypt(b'not a block')
    with pytest.raises(ValueError):
        cipher.decrypt(b'')
    # A block whose last byte is not valid padding (a zero byte, before padding is added).
    other = AESCipher(AES_KEY[:16] + '0123456789abcdef')
    with pytest.raises(ValueError):
        cipher.decrypt(other.encrypt(b'x' * 15 + b'\x00')[:16])


def test_aes_cipher_is_safe_to_share_between_threads():
    cipher = AESCipher(AES_KEY)
    failures = []

    def work(seed):
        for index in range(200):
            data = ('%d-%d' % (seed, index)).encode('ascii') * (index % 7 + 1)
            if cipher.decrypt(cipher.encrypt(data)) != data:
                failures.append(data)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


# -- ClientCache: store and load ---------------------------------------------------------

def test_an_id_holds_the_session_and_loads_with_the_id_presented():
    cache = make_cache()
    session_id = cache.store_session(session_data(key='k1'))
    assert isinstance(session_id, str)
    loaded = cache.load_session(session_id)
    assert loaded['session_id'] == session_id
    assert (loaded['user_id'], loaded['expires'], loaded['key']) == ('alice', FAR_FUTURE, 'k1')
    assert TotoSession.loads(loaded['state']) == {'counter': 1}


def test_each_id_is_new_even_for_the_same_session():
    cache = make_cache()
    data = session_data()
    ids = set(cache.store_session(data) for _ in range(20))
    assert len(ids) == 20
    # The random first block makes every ciphertext block differ, not only the first.
    first_blocks = set(urlsafe_b64decode(session_id)[16:32] for session_id in ids)
    assert len(first_blocks) == 20


def test_the_previous_session_id_is_not_kept_inside():
    cache = make_cache()
    data = session_data()
    data['session_id'] = 'PREVIOUS-ID-MARKER'
    session_id = cache.store_session(data)
    raw = urlsafe_b64decode(session_id)
    plain = AESCipher(AES_KEY).decrypt(raw[:-HMAC_SIZE])
    assert b'PREVIOUS-ID-MARKER' not in plain
    assert data['session_id'] == 'PREVIOUS-ID-MARKER'  # the caller's dict is left alone


def test_the_id_layout_is_1_0_12s():
    cache = make_cache()
    session_id = cache.store_session(session_data())
    raw = urlsafe_b64decode(session_id)
    encrypted, signature = raw[:-HMAC_SIZE], raw[-HMAC_SIZE:]
    assert signature == cache.hmac(encrypted)
    plain = AESCipher(AES_KEY).decrypt(encrypted)
    stored = TotoSession.loads(plain[16:])
    assert stored['user_id'] == 'alice' and 'session_id' not in stored
    assert session_id.endswith('=') == (len(raw) % 3 != 0)  # padding kept


def test_an_id_without_its_base64_padding_still_loads():
    cache = make_cache()
    paddings = set()
    for length in range(0, 64, 16):  # one more cipher block each time: every padding
        session_id = cache.store_session(session_data(state={'pad': 'x' * length}))
        paddings.add(len(session_id) - len(session_id.rstrip('=')))
        assert cache.load_session(session_id.rstrip('='))['user_id'] == 'alice'
    assert paddings == set([0, 1, 2])


def test_an_id_made_by_1_0_12_loads():
    loaded = make_cache().load_session(ID_FROM_1_0_12)
    session = TotoSession(None, loaded)
    assert (session.user_id, session.key, session.expires) == (
        'alice', 'hmac-key-of-alice', FAR_FUTURE)
    assert session.session_id == ID_FROM_1_0_12
    assert session.state == {'counter': 2, 'city': u'café'}


# -- ClientCache: what it refuses ---------------------------------------------------------

def test_a_changed_id_is_refused_with_1_0_12s_error():
    cache = make_cache()
    session_id = cache.store_session(session_data())
    raw = bytearray(urlsafe_b64decode(session_id))
    raw[20] ^= 1
    error = invalid_id_error(cache, urlsafe_b64encode(bytes(raw)).decode('ascii'))
    assert (error.code, error.value) == (-1, 'Invalid session HMAC')


def test_an_id_signed_with_another_key_is_refused():
    other = ClientCache(AESCipher(AES_KEY), 'another hmac key, same cipher')
    error = invalid_id_error(make_cache(), other.store_session(session_data()))
    assert error.code == -1


# A database session id (fixed here: the parameters must be the same in every run).
@pytest.mark.parametrize('session_id', [
    '', 'abc', 'not base64 at all!!', u'caf\xe9-not-ascii', 'A' * 27, 'A' * 28,
    'oNQl8vnTReurSfiKbd7BCQ',
])
def test_garbage_ids_are_refused_with_the_same_error(session_id):
    error = invalid_id_error(make_cache(), session_id)
    assert (error.code, error.value) == (-1, 'Invalid session HMAC')


def test_an_id_of_a_server_with_another_aes_key_is_refused():
    other = ClientCache(AESCipher('another AES key.and its own IV..'), HMAC_KEY)
    ids = [other.store_session(session_data()) for _ in range(20)]
    # Same signing key, other cipher: the padding almost always fails; a chance survivor
    # unpickles garbage. Either way no session, and one error.
    for session_id in ids:
        error = invalid_id_error(make_cache(), session_id)
        assert (error.code, error.value) == (-1, 'Invalid session')


class _Recorder(object):
    """Unpickling one calls record_unpickled: proof that a pickle ran."""

    def __reduce__(self):
        return (record_unpickled, ())


UNPICKLED = []


def record_unpickled():
    UNPICKLED.append(True)
    return {'user_id': 'mallory', 'expires': FAR_FUTURE}


def _forged_id(hmac_key):
    # What an attacker without the key can send: any pickle, encrypted and "signed".
    encrypted = AESCipher(AES_KEY).encrypt(os.urandom(16) + pickle.dumps(_Recorder(), 0))
    signature = ClientCache(AESCipher(AES_KEY), hmac_key).hmac(encrypted)
    return urlsafe_b64encode(encrypted + signature).decode('ascii')


def test_nothing_is_unpickled_before_the_signature_is_checked():
    del UNPICKLED[:]
    error = invalid_id_error(make_cache(), _forged_id('a guessed hmac key'))
    assert error.code == -1
    assert UNPICKLED == []
    # The control: signed with the real key, the same pickle does run, so the order matters.
    loaded = make_cache().load_session(_forged_id(HMAC_KEY))
    assert UNPICKLED == [True] and loaded['user_id'] == 'mallory'


def test_an_empty_hmac_key_is_refused():
    with pytest.raises(ValueError):
        ClientCache(AESCipher(AES_KEY), '')


# -- ClientCache: expiry and removal ------------------------------------------------------

def test_an_expired_id_loads_as_no_session_unless_asked_for_1_0_12s_behaviour():
    stale = make_cache().store_session(session_data(expires=time.time() - 1))
    assert make_cache().load_session(stale) is None
    assert make_cache(check_expiry=False).load_session(stale)['user_id'] == 'alice'


def test_remove_session_cannot_revoke_an_id():
    cache = make_cache()
    session_id = cache.store_session(session_data())
    cache.remove_session(session_id)
    assert cache.load_session(session_id)['user_id'] == 'alice'


# -- ClientCache under a database connection ----------------------------------------------

def test_a_json_connection_keeps_its_sessions_in_the_ids():
    db = JSONConnection(session_ttl=3600)
    db.set_session_cache(make_cache())
    db.create_account('Alice', 'secret')
    session = db.create_session('alice', 'secret', key='request-key')
    assert db.get('session') is None  # nothing stored on the server
    assert len(session.session_id) > 100
    first_id = session.session_id

    session['counter'] = 5
    session.save()
    assert session.session_id != first_id  # saving hands out a new id

    found = db.retrieve_session(session.session_id)
    assert (found.user_id, found['counter'], found.key) == ('alice', 5, 'request-key')
    assert found.session_id != session.session_id  # each renewal does too
    assert db.retrieve_session(found.session_id)['counter'] == 5

    anonymous = db.create_session()
    assert db.retrieve_session(anonymous.session_id).user_id == ''


def test_a_json_connection_finds_no_session_for_an_expired_id():
    db = JSONConnection(session_ttl=3600)
    db.set_session_cache(make_cache())
    stale = make_cache().store_session(session_data(expires=time.time() - 5))
    assert db.retrieve_session(stale) is None


# -- against Toto 1.0.12 ------------------------------------------------------------------

_ORACLE_SCRIPT = r'''
import json, sys
from toto.clientsessioncache import ClientCache, AESCipher
from toto.session import TotoSession
cache = ClientCache(AESCipher(sys.argv[1]), sys.argv[2])
request = json.loads(sys.stdin.read())
answer = {'made': [], 'loaded': []}
for state in request['make']:
    answer['made'].append(cache.store_session({
        'user_id': u'bob', 'expires': 4102444800.0, 'session_id': 'x' * 22,
        'key': 'k-bob', 'state': TotoSession.dumps(state)}))
for session_id in request['load']:
    data = cache.load_session(str(session_id))
    answer['loaded'].append({'user_id': data['user_id'], 'expires': data['expires'],
                             'key': data.get('key'), 'same_id': data['session_id'] == session_id,
                             'state': TotoSession.loads(data['state'])})
sys.stdout.write(json.dumps(answer))
'''

STATES = [{}, {'counter': 3}, {u'city': u'café €', 'tags': [u'a', u'b'], 'n': 1.5}]


def _oracle_python():
    if TESTS_DIR not in sys.path:
        sys.path.insert(0, TESTS_DIR)
    import oracle
    python = oracle.oracle_python()
    env = oracle._oracle_env()
    check = subprocess.Popen([python, '-c', 'import Crypto.Cipher.AES'], env=env, cwd='/',
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check.communicate()
    if check.returncode != 0:
        pytest.skip('the oracle has no pycryptodome (1.0.12 imports Crypto.Cipher.AES): '
                    'pip install pycryptodome into it')
    return python, env


def test_ids_travel_both_ways_between_1_0_12_and_this_package():
    python, env = _oracle_python()
    cache = make_cache()
    ours = [cache.store_session(session_data(state=state, key='k-alice')) for state in STATES]
    process = subprocess.Popen([python, '-c', _ORACLE_SCRIPT, AES_KEY, HMAC_KEY], env=env,
                               cwd='/', stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    request = json.dumps({'make': STATES, 'load': ours}).encode('utf-8')
    output, errors = process.communicate(request)
    assert process.returncode == 0, errors.decode('utf-8', 'replace')
    answer = json.loads(output.decode('utf-8'))

    # Ours, read by 1.0.12.
    for state, loaded in zip(STATES, answer['loaded']):
        assert loaded == {'user_id': 'alice', 'expires': FAR_FUTURE, 'key': 'k-alice',
                          'same_id': True, 'state': state}
    # 1.0.12's, read here.
    for state, session_id in zip(STATES, answer['made']):
        session = TotoSession(None, cache.load_session(session_id))
        assert (session.user_id, session.key, session.session_id) == (
            'bob', 'k-bob', session_id)
        assert session.state == state
        if six.PY3:
            assert all(isinstance(name, str) for name in session.state)
