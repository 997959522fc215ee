# -*- coding: utf-8 -*-
"""Differential: JSON stores written by Toto 1.0.12 load here, and the other way round.

The original runs in its own interpreter, ``$TOTO_ORACLE_PYTHON`` (Python 2.7 with
``toto==1.0.12`` installed). Without it these tests are skipped, unless ``$CI`` is set, where
they fail. Both sides do the same things: create an account with a field, sign in, keep state in
the session and a property in the account, keep state in an anonymous session; then each side
reads the other's file, signs in with the same password and loads the state.
"""

from __future__ import absolute_import, division, print_function

import datetime
import json
import subprocess
import sys

import pytest
import six

from dboracle import PORTABLE, oracle_python, portable, run_script
from dbsupport import cheap_password_hashes  # noqa: F401 -- autouse fixture
from toto.jsondbconnection import JSONConnection

# What the 1.0.12 side stores. No character in U+0080..U+00FF: 1.0.12 itself cannot write
# those to JSON (its pickle then holds raw bytes that json.dump refuses).
ORACLE_STATE = {'count': 3, 'city': u'\u20ac-town', 'tags': ['a', u'b'], 'ratio': 0.25,
                'flag': True, 'nothing': None, 'when': datetime.datetime(2015, 7, 1, 12, 30, 5)}
# What this package stores: the same plus Latin-1 range text, which the ASCII pickle carries.
OUR_STATE = dict(ORACLE_STATE, latin=u'café', day=datetime.date(2020, 2, 29),
                 escapes=u'back\\slash\nnew line \\u00e9 \U0001f600', raw=b'\xff\x00')
ANONYMOUS_STATE = {'cart': ['apple', u'pear']}

ORACLE_SCRIPT = r'''
import json, sys
from toto.jsondbconnection import JSONConnection

mode, path = sys.argv[1], sys.argv[2]
if mode == 'write':
    with open(path, 'wb') as f:
        f.write('{}')
    db = JSONConnection(path, True)
    db.create_account('Alice', 'secret', color='red')
    session = db.create_session('alice', 'secret')
    for k, v in {'count': 3, 'city': u'\u20ac-town', 'tags': ['a', u'b'], 'ratio': 0.25,
                 'flag': True, 'nothing': None,
                 'when': datetime.datetime(2015, 7, 1, 12, 30, 5)}.items():
        session[k] = v
    session.save()
    account = session.get_account()
    account['nickname'] = 'al'
    account.save()
    anonymous = db.create_session()
    anonymous['cart'] = ['apple', u'pear']
    anonymous.save()
    print(json.dumps({'user': session.session_id, 'anonymous': anonymous.session_id}))
else:
    user_session_id, anonymous_session_id = sys.argv[3], sys.argv[4]
    db = JSONConnection(path, True)
    signed_in = db.create_session('ALICE', 'secret')
    session = db.retrieve_session(user_session_id)
    anonymous = db.retrieve_session(anonymous_session_id)
    print(json.dumps({'signed_in': signed_in.user_id, 'user_id': session.user_id,
                      'state': portable(session.state),
                      'nickname': session.get_account()['nickname'],
                      'anonymous_state': portable(anonymous.state)}))
'''


@pytest.fixture
def oracle():
    return oracle_python('TOTO_ORACLE_PYTHON', 'toto==1.0.12')


def run_oracle(oracle, cwd, *args):
    return run_script(oracle, ['-c', PORTABLE + ORACLE_SCRIPT] + list(args), cwd)


def write_here(path):
    db = JSONConnection(path, persistent=True)
    db.create_account('Alice', 'secret', color='red')
    session = db.create_session('alice', 'secret')
    for key, value in OUR_STATE.items():
        session[key] = value
    session.save()
    account = session.get_account()
    account['nickname'] = 'al'
    account.save()
    anonymous = db.create_session()
    for key, value in ANONYMOUS_STATE.items():
        anonymous[key] = value
    anonymous.save()
    return {'user': session.session_id, 'anonymous': anonymous.session_id}


def shape(value):
    """The structure of a stored document: keys, and the JSON type of each value."""
    if isinstance(value, dict):
        return dict((key, shape(item)) for key, item in value.items())
    if isinstance(value, six.string_types):
        return 'string'
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, (int, float)):
        return 'number'
    return type(value).__name__


def store_shape(path):
    with open(path, 'rb') as stored:
        document = json.loads(stored.read().decode('utf-8'))
    assert sorted(document) == ['account', 'session']
    # Ids differ between runs: keep the documents, sorted, without their ids.
    return dict((table, sorted((shape(item) for item in document[table].values()),
                               key=lambda item: sorted(item.items())))
                for table in document)


def test_a_store_written_by_toto_1_0_12_loads_here(oracle, tmpdir):
    path = str(tmpdir.join('oracle.json'))
    ids = run_oracle(oracle, str(tmpdir), 'write', path)
    db = JSONConnection(path, persistent=True)
    assert db.create_session('ALICE', 'secret').user_id == 'alice'
    session = db.retrieve_session(ids['user'])
    assert session.user_id == 'alice'
    assert session.state == ORACLE_STATE
    assert session.get_account()['nickname'] == 'al'
    anonymous = db.retrieve_session(ids['anonymous'])
    assert anonymous.user_id == '' and anonymous.state == ANONYMOUS_STATE


def test_a_store_written_here_loads_in_toto_1_0_12(oracle, tmpdir):
    path = str(tmpdir.join('ours.json'))
    ids = write_here(path)
    seen = run_oracle(oracle, str(tmpdir), 'read', path, ids['user'], ids['anonymous'])
    assert seen == {'signed_in': 'alice', 'user_id': 'alice', 'state': portable(OUR_STATE),
                    'nickname': 'al', 'anonymous_state': portable(ANONYMOUS_STATE)}
    # ... and what the original wrote back (renewed sessions, its own login) still loads here.
    db = JSONConnection(path)
    assert db.retrieve_session(ids['user']).state == OUR_STATE


def test_both_sides_store_documents_of_the_same_shape(oracle, tmpdir):
    theirs = str(tmpdir.join('oracle.json'))
    ours = str(tmpdir.join('ours.json'))
    run_oracle(oracle, str(tmpdir), 'write', theirs)
    write_here(ours)
    assert store_shape(ours) == store_shape(theirs)
    expected_session = {'user_id': 'string', 'expires': 'number', 'session_id': 'string',
                        'state': 'string'}
    assert store_shape(ours) == {
        'account': [{'user_id': 'string', 'password': 'string', 'color': 'string',
                     'properties': {'nickname': 'string'}}],
        'session': [expected_session, expected_session]}


def test_the_oracle_is_python_2(oracle):
    # The differential is only meaningful against the original on Python 2.7.
    output = subprocess.check_output([oracle, '-c', 'import sys; print(sys.version_info[0])'])
    assert output.strip() == b'2'
    assert sys.version_info[0] in (2, 3)
