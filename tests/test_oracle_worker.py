"""Differential tests of a worker app: Toto 1.0.12 and this package answer alike.

``worker_app`` (tests/oracle_apps) is a method package written as Toto 1.0.12 apps write
theirs: ``from toto.invocation import *``, ``@requires``, ``@default_parameters``,
``@asynchronous``, TotoExceptions, a nested module, ``toto.tasks.TaskQueue``, accounts
and sessions through ``handler.db_connection`` with ``--database=json``, an option
defined by a method module and one by the ``--startup_function`` module, all set from a
conf file.  The kit (tests/oracle.py) runs it under the original and under this package
and compares every answer and the JSON database each side wrote; the differences that
are intended are listed, with their reasons, in tests/oracle_differences.py.

Every test runs twice: against this package (``vs-this-package``) and against the
oracle itself (``vs-1.0.12``), which shows that the masks hide only what is random.
"""

import pytest

import oracle
from oracle import SideFile
from oracle_cases import APP_CASES, BASIC_CASES, DECORATOR_CASES

STARTUP_FUNCTION = 'worker_app_startup.init'
CONF_GREETING = 'hello from the conf file'
CONF_STARTUP_GREETING = 'hello from the conf file to startup'


def app_conf(**extra):
    """The app's conf file: the json database (persistent, in a file of each side's own)
    and values for the options its modules define."""
    conf = {'database': 'json', 'db_host': SideFile('db.json', '{}'), 'db_port': 1,
            'app_greeting': CONF_GREETING, 'startup_greeting': CONF_STARTUP_GREETING,
            'startup_count': 3}
    conf.update(extra)
    return conf


AGAINST = [oracle.COMPAT, oracle.ORIGINAL]
AGAINST_IDS = ['vs-this-package', 'vs-1.0.12']


@pytest.fixture(params=AGAINST, ids=AGAINST_IDS)
def against(request):
    """What a test's own pair compares 1.0.12 with: this package, or 1.0.12 again."""
    return request.param


@pytest.fixture(scope='module', params=AGAINST, ids=AGAINST_IDS)
def worker_pair(request, tmp_path_factory):
    """worker_app under 1.0.12 and under the other side, as a Toto app's script starts it:
    ``TotoWorkerService('app.conf').run()`` with ``--startup_function`` on the command line."""
    directory = str(tmp_path_factory.mktemp('worker-pair'))
    with oracle.Pair(directory, against=request.param) as pair:
        pair.start('worker_app', conf=app_conf(),
                   args=['--startup_function=' + STARTUP_FUNCTION])
        yield pair


@pytest.mark.parametrize('case', BASIC_CASES + DECORATOR_CASES + APP_CASES, ids=repr)
def test_answers_match(worker_pair, case):
    case.run(worker_pair)


def test_requires_names_the_missing_parameter(worker_pair):
    comparison = worker_pair.compare('requires.missing_one', 'requires_ab', {'b': 2})
    assert comparison.original == {'error': {'code': 1003, 'value': 'Missing parameters: a'}}


def test_asynchronous_method_is_acknowledged_then_runs(worker_pair):
    acknowledged = worker_pair.compare('asynchronous.acknowledged', 'later', {'order': 'tea'})
    assert acknowledged.original is None
    ran = worker_pair.compare('asynchronous.ran', 'later_log')
    assert ran.original == {'received': [{'order': 'tea'}]}


def test_startup_module_named_on_the_command_line_keeps_its_option_defaults(worker_pair):
    # 1.0.12 imports the startup module before it reads the conf file only when the conf
    # file names it (fact sheet 5): named on the command line, its options are defined
    # after the conf file was read, and keep their defaults.
    comparison = worker_pair.compare('options.defined_by_the_startup_module', 'startup_info')
    assert comparison.original == {'startup_greeting': 'hello from the startup default',
                                   'startup_count': 1, 'db_connection_is_the_workers': True}


def test_method_module_option_comes_from_the_conf_file(worker_pair):
    comparison = worker_pair.compare('options.defined_by_a_method_module', 'app_option')
    assert comparison.original == {'app_greeting': CONF_GREETING}


def test_accounts_and_sessions_through_db_connection(worker_pair):
    pair = worker_pair

    def alice(**state):
        return lambda side: dict(state, session_id=side.kept['alice'])

    def anonymous(**state):
        return lambda side: dict(state, session_id=side.kept['anonymous'])

    pair.compare('accounts.create', 'accounts.create',
                 {'user_id': 'Alice', 'password': 'secret', 'display_name': 'Alice A'})
    pair.compare('accounts.create_taken', 'accounts.create',
                 {'user_id': 'ALICE', 'password': 'other'})
    pair.compare('accounts.create_empty_id', 'accounts.create',
                 {'user_id': '', 'password': 'x'})
    pair.compare('accounts.create_without_password', 'accounts.create', {'user_id': 'bob'})
    login = pair.compare('accounts.login', 'accounts.login',
                         {'user_id': 'ALICE', 'password': 'secret'},
                         keep={'session_id': 'alice'}, mask=('expires',))
    assert login.canonical[oracle.ORIGINAL] == {
        'session_id': '<kept:alice>', 'user_id': 'alice', 'expires': '<now + 365 days>'}
    pair.compare('accounts.login_wrong_password', 'accounts.login',
                 {'user_id': 'alice', 'password': 'wrong'})
    pair.compare('accounts.login_unknown_user', 'accounts.login',
                 {'user_id': 'nobody', 'password': 'secret'})
    anonymous_login = pair.compare('accounts.anonymous', 'accounts.anonymous',
                                   keep={'session_id': 'anonymous'}, mask=('expires',))
    assert anonymous_login.canonical[oracle.ORIGINAL]['expires'] == '<now + 1 days>'

    pair.compare('sessions.save_state', 'accounts.state_set',
                 alice(counter=1, basket=['tea', 'scones']))
    loaded = pair.compare('sessions.load_state', 'accounts.state_get', alice())
    assert loaded.original['state'] == {'counter': 1, 'basket': ['tea', 'scones']}
    pair.compare('sessions.save_falsy_state', 'accounts.state_set', anonymous(counter=0))
    pair.compare('sessions.falsy_values_read_as_none', 'accounts.state_get', anonymous())
    pair.compare('sessions.unknown_id', 'accounts.state_get', {'session_id': 'A' * 22})
    pair.compare('sessions.logout', 'accounts.logout', anonymous())
    pair.compare('sessions.after_logout', 'accounts.state_get', anonymous())
    pair.compare('accounts.change_password', 'accounts.change_password',
                 {'user_id': 'alice', 'password': 'secret', 'new_password': 'newer'})

    stored = pair.compare_stored('accounts.stored_json', 'db.json',
                                 mask=('expires', 'password', 'state'))
    assert sorted(stored.canonical[oracle.ORIGINAL]['session']) == ['<kept:alice>']


def test_conf_file_sets_the_options_of_the_startup_module_it_names(tmp_path, against):
    with oracle.Pair(str(tmp_path), against) as pair:
        pair.start('worker_app', conf=app_conf(startup_function=STARTUP_FUNCTION))
        comparison = pair.compare('options.startup_module_named_in_the_conf',
                                  'startup_info')
    assert comparison.original == {'startup_greeting': CONF_STARTUP_GREETING,
                                   'startup_count': 3, 'db_connection_is_the_workers': True}


@pytest.mark.parametrize('writer', ['1.0.12', 'other'])
def test_stored_accounts_and_sessions_carry_over(tmp_path, against, writer):
    """What one package stored in its json database, the other reads: an account to log in
    to, a session with its state (a pickle), a taken user id."""
    with oracle.Pair(str(tmp_path), against) as pair:
        # A cheap hash: 1.0.12's pure-Python PBKDF2 needs seconds for the default 100,000
        # iterations (tests/test_secret.py has it verify one); 1.0.12 ignores the option.
        pair.start('worker_app', conf=app_conf(password_hash_iterations=1000))
        source = pair.original if writer == '1.0.12' else pair.other
        source.call('accounts.create', {'user_id': 'carol', 'password': 'pw', 'team': 'blue'})
        session = source.call('accounts.login', {'user_id': 'carol', 'password': 'pw'})
        source.call('accounts.state_set', {'session_id': session['session_id'],
                                           'visits': 3, 'seen': ['a', 'b']})
        written = source.read('db.json')

        # Both sides start again, each on a copy of what the writer stored.
        pair.start('worker_app', conf=app_conf(db_host=SideFile('written.json', written)))
        loaded = pair.compare('stored.load_session', 'accounts.state_get',
                              {'session_id': session['session_id']})
        assert loaded.original['state'] == {'visits': 3, 'seen': ['a', 'b']}
        pair.compare('stored.login', 'accounts.login', {'user_id': 'carol', 'password': 'pw'},
                     keep={'session_id': 'new'}, mask=('expires',))
        pair.compare('stored.user_id_taken', 'accounts.create',
                     {'user_id': 'Carol', 'password': 'x'})
        pair.compare_stored('stored.rewritten', 'written.json',
                            mask=('expires', 'password', 'state'))
