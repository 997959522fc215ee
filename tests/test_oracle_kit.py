"""The differential test kit itself (tests/oracle.py) and its list of accepted differences.

The first tests need no oracle: how a comparison passes or fails, the masks, the conf
files the kit writes, the skip-or-fail rule.  The others run ``basic_app`` -- the part of
a Toto worker app that needs only the worker RPC layer -- under Toto 1.0.12 and under
this package (and under 1.0.12 twice), and check that the kit's processes end.
"""

import os
import pickle
import re
import time

import pytest

import oracle
import oracle_differences
from oracle_cases import APP_CASES, BASIC_CASES, DECORATOR_CASES

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def comparison(case, original, other):
    answers = {oracle.ORIGINAL: original, oracle.COMPAT: other}
    return oracle.Comparison(case, 'method', {}, answers, answers)


# -- comparing, without processes -------------------------------------------------------------

def test_equal_answers_pass():
    result = oracle.check(comparison('kit.equal', {'sum': 3}, {'sum': 3}))
    assert result.difference is None


def test_unlisted_difference_fails_with_both_answers():
    with pytest.raises(AssertionError) as failure:
        oracle.check(comparison('kit.not_listed', {'sum': 3}, {'sum': 4}))
    message = str(failure.value)
    assert 'unlisted difference' in message
    assert "{'sum': 3}" in message and "{'sum': 4}" in message
    assert 'tests/oracle_differences.py' in message and "'kit.not_listed'" in message


@pytest.fixture
def reordering_listed(monkeypatch):
    """A listed difference for the kit's own tests: the same names in another order."""
    entry = oracle_differences.Difference(
        call='``kit.reordered``', original='a, b', now='b, a', reason='a test of the kit',
        accepts=oracle_differences._same_names_any_order('Missing parameters: '))
    monkeypatch.setitem(oracle_differences.DIFFERENCES, 'kit.reordered', entry)
    return entry


def test_listed_difference_accepts_its_shape_only(reordering_listed):
    ordered = {'error': {'code': 1003, 'value': 'Missing parameters: a, b'}}
    reordered = {'error': {'code': 1003, 'value': 'Missing parameters: b, a'}}
    accepted = oracle.check(comparison('kit.reordered', ordered, reordered))
    assert accepted.difference is reordering_listed

    fewer = {'error': {'code': 1003, 'value': 'Missing parameters: a'}}
    with pytest.raises(AssertionError) as failure:
        oracle.check(comparison('kit.reordered', ordered, fewer))
    assert 'does not accept' in str(failure.value)


def test_strict_comparison_accepts_no_listed_difference(reordering_listed):
    ordered = {'error': {'code': 1003, 'value': 'Missing parameters: a, b'}}
    reordered = {'error': {'code': 1003, 'value': 'Missing parameters: b, a'}}
    with pytest.raises(AssertionError) as failure:
        oracle.check(comparison('kit.reordered', ordered, reordered), strict=True)
    assert 'differs from itself' in str(failure.value)


def test_canonical_masks_random_values_and_keeps_the_rest():
    state = pickle.dumps({'counter': 2}, 0).decode('latin-1')
    stored = {
        'session': {'Qw3_-rT5yUiOpAsDfGhJkL': {
            'session_id': 'Qw3_-rT5yUiOpAsDfGhJkL', 'user_id': 'alice',
            'expires': time.time() + 365 * 86400, 'state': state}},
        'account': {'alice': {'password': '$p5k2$$CUegsA2v$qCXD79hjhCO4PHe6dbujVTyvP.uo81AQ',
                              'user_id': 'alice'}},
        'other': 'Zx3_-rT5yUiOpAsDfGhJkL',
    }
    kept = {'alice': 'Qw3_-rT5yUiOpAsDfGhJkL'}
    assert oracle.canonical(stored, kept, mask=('expires', 'password', 'state')) == {
        'session': {'<kept:alice>': {
            'session_id': '<kept:alice>', 'user_id': 'alice', 'expires': '<now + 365 days>',
            'state': {'<unpickled>': {'counter': 2}}}},
        'account': {'alice': {'password': '<pbkdf2 $p5k2$ hash>', 'user_id': 'alice'}},
        'other': 'Zx3_-rT5yUiOpAsDfGhJkL',
    }
    # A value that does not have the masked format stays as it is, so it shows.
    assert oracle.canonical({'password': 'plain', 'session_id': 'short'},
                            mask=('password', 'session_id')) == {
        'password': 'plain', 'session_id': 'short'}


def test_canonical_turns_undecodable_answers_into_comparable_values():
    answer = {'error': TypeError('cannot unpickle')}
    assert oracle.canonical(answer) == {
        'error': {'<exception>': 'TypeError', 'message': 'cannot unpickle'}}
    assert oracle.canonical((1, [2])) == (1, [2])


def test_conf_file_is_python_that_sets_native_strings():
    text = oracle.conf_text({'db_host': "/tmp/it's\\here", 'db_port': 1, 'debug': True,
                             'remote_event_receivers': ['tcp://a:1', 'tcp://b:2'],
                             'cookie_secret': None})
    values = {}
    exec(text, values)
    assert values['db_host'] == "/tmp/it's\\here" and type(values['db_host']) is str
    assert values['db_port'] == 1 and values['debug'] is True
    assert values['remote_event_receivers'] == ['tcp://a:1', 'tcp://b:2']
    assert values['cookie_secret'] is None
    with pytest.raises(ValueError):
        oracle.conf_text({'greeting': u'th\xe9'})


def test_no_oracle_skips_the_test_but_fails_it_under_ci(monkeypatch):
    monkeypatch.delenv(oracle.ORACLE_VARIABLE, raising=False)
    monkeypatch.delenv('CI', raising=False)
    with pytest.raises(pytest.skip.Exception):
        oracle.oracle_python()
    monkeypatch.setenv('CI', 'true')
    with pytest.raises(pytest.fail.Exception):
        oracle.oracle_python()


# -- the list of differences --------------------------------------------------------------------

def _case_ids_in_tests():
    ids = set(case.case for case in BASIC_CASES + DECORATOR_CASES + APP_CASES)
    for name in os.listdir(TESTS_DIR):
        if name.startswith('test_oracle') and name.endswith('.py'):
            with open(os.path.join(TESTS_DIR, name)) as source:
                ids.update(re.findall(r"'([a-z_]+\.[a-z_.]+)'", source.read()))
    return ids


def test_every_listed_difference_is_a_case_the_tests_compare():
    unused = set(oracle_differences.DIFFERENCES) - _case_ids_in_tests()
    assert not unused, 'listed differences no test compares: %s' % sorted(unused)


def test_every_listed_difference_renders_for_the_docs():
    text = oracle_differences.render_rst()
    for case, entry in oracle_differences.DIFFERENCES.items():
        assert entry.call and entry.original and entry.now and entry.reason, case
        assert '``%s``: %s' % (case, entry.call) in text
        assert entry.reason in text


# -- the kit on real services ------------------------------------------------------------------

@pytest.fixture(scope='module', params=[oracle.COMPAT, oracle.ORIGINAL],
                ids=['vs-this-package', 'vs-1.0.12'])
def basic_pair(request, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp('basic-pair'))
    with oracle.Pair(directory, against=request.param) as pair:
        pair.start('basic_app')
        yield pair


@pytest.mark.parametrize('case', BASIC_CASES, ids=repr)
def test_basic_app_answers_match(basic_pair, case):
    case.run(basic_pair)


def test_basic_app_asynchronous_method_is_acknowledged_then_runs(basic_pair):
    acknowledged = basic_pair.compare('asynchronous.acknowledged', 'later', {'order': 'tea'})
    assert acknowledged.original is None
    ran = basic_pair.compare('asynchronous.ran', 'later_log')
    assert ran.original == {'received': [{'order': 'tea'}]}


def test_a_side_that_exits_fails_the_test_with_its_log(tmp_path):
    with oracle.Pair(str(tmp_path)) as pair:
        with pytest.raises(AssertionError) as failure:
            pair.start('no_such_app')
        message = str(failure.value)
    assert 'exited before it answered a call' in message
    assert 'no_such_app' in message


def test_the_pair_ends_every_process_it_started(tmp_path):
    with oracle.Pair(str(tmp_path)) as pair:
        pair.start('basic_app')
        groups = [side.process for side in pair.sides]
        assert all(process.members() for process in groups)
        # The oracle's service is a process tree: main, queue device, worker.
        assert len(pair.original.process.members()) >= 3
    assert [process.members() for process in groups] == [[], []]
    assert not os.path.exists(pair.socket_directory)
