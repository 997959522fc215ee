"""Worker services running method packages written as Toto 1.0.12 applications write them.

The methods live in ``tests/app_methods``: star imports of ``toto.invocation``,
decorators, an option defined by the package and one by its startup module, a
method reached through a class, and a method that uses ``--database=json``.
Each test starts a real ``TotoWorkerService`` process and calls it over loopback.
"""

import os

import pytest
from workerproc import ServiceGroup, call

APP = 'app_methods'


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def start_app(services, args=(), **kwargs):
    service = services.start(args=list(args), method_module=APP, wait=False, **kwargs)
    connection = services.connect(service.address)
    return service, connection


def wait_until_serving(connection, services):
    from support import wait_until

    def serving():
        answer = call(connection, 'shop.cart', {'items': []}, timeout=1.0)
        return answer if answer == {'items': 0} else None
    return wait_until(serving, timeout=30, message=services.logs)


@pytest.mark.timeout(60)
def test_requires_answers_1003_with_the_missing_names_in_1_0_12_order(services):
    service, connection = start_app(services)
    wait_until_serving(connection, services)

    assert call(connection, 'needs_two', {}) == {
        'error': {'code': 1003, 'value': 'Missing parameters: password, user_id'}}
    assert call(connection, 'needs_two', {'password': 'x'}) == {
        'error': {'code': 1003, 'value': 'Missing parameters: user_id'}}
    assert call(connection, 'needs_two', {'password': 'x', 'user_id': 'y'}) == {'ok': True}


@pytest.mark.timeout(60)
def test_default_parameters_fill_in_and_a_class_with_invoke_is_a_method(services):
    service, connection = start_app(services)
    wait_until_serving(connection, services)

    assert call(connection, 'greet', {'name': 'Ada'})['greeting'] == 'Hello, Ada!'
    assert call(connection, 'greet', {'name': 'Ada', 'punctuation': '?'})['greeting'] == \
        'Hello, Ada?'
    assert call(connection, 'shop.cart.Checkout', {'prices': [1, 2, 3]}) == {'total': 6}


@pytest.mark.timeout(60)
def test_session_decorators_on_a_worker_answer_a_clear_error(services):
    service, connection = start_app(services)
    wait_until_serving(connection, services)

    answer = call(connection, 'members_only', {})

    assert answer['error']['code'] == 1000
    assert '@authenticated needs a TotoServer request' in answer['error']['value']


@pytest.mark.timeout(60)
def test_options_the_method_and_startup_modules_define_come_from_the_conf_file(
        services, tmp_path):
    conf = tmp_path / 'app.conf'
    conf.write_text(u"app_greeting = 'Bonjour'\napp_startup_flag = 'from the conf'\n")
    service, connection = start_app(
        services, ['--startup_function=app_methods.startup.init'], conf_file=str(conf))
    wait_until_serving(connection, services)

    greeting = call(connection, 'greet', {'name': 'Ada'})
    state = call(connection, 'worker_state', {})

    # Read at call time and at import time (the modules are imported again
    # once every option is read).
    assert greeting == {'greeting': 'Bonjour, Ada!', 'at_import': 'Bonjour'}
    assert state['startup_saw'] == {'flag': 'from the conf', 'same_db': True}


@pytest.mark.timeout(60)
def test_the_first_module_option_on_the_command_line_is_honoured(services, tmp_path):
    # 1.0.12 dropped the first module option of the command line in its first
    # pass, and imported the default "methods" package instead.
    service, connection = start_app(
        services, ['--method_module=' + APP, '--app_greeting=Hej'])
    wait_until_serving(connection, services)

    assert call(connection, 'greet', {'name': 'Ada'})['greeting'] == 'Hej, Ada!'


@pytest.mark.timeout(60)
def test_a_worker_has_the_none_database_and_the_1_0_12_status_by_default(services):
    service, connection = start_app(services)
    wait_until_serving(connection, services)

    assert call(connection, 'worker_state', {}) == {
        'status': 'Working', 'has_db': True, 'db_type': 'FakeConnection',
        'startup_saw': None}


@pytest.mark.timeout(60)
def test_json_database_gives_workers_accounts_and_sessions(services, tmp_path):
    store = str(tmp_path / 'store.json')
    service, connection = start_app(
        services, ['--database=json', '--db_host=' + store, '--db_port=1'])
    wait_until_serving(connection, services)

    answer = call(connection, 'accounts', {'user_id': 'Ada', 'password': 'secret'})

    assert answer == {'user_id': 'ada', 'visits': 1}
    assert os.path.exists(store)


@pytest.mark.timeout(60)
def test_a_dotted_method_module_answers_both_ways(services):
    service, connection = start_app(services, ['--method_module=app_methods.shop'])

    from support import wait_until
    wait_until(lambda: call(connection, 'cart', {'items': [1]}, timeout=1.0) == {'items': 1},
               timeout=30, message=services.logs)

    # Relative to the whole module, and, as 1.0.12 resolved it, from below
    # the top package.
    assert call(connection, 'cart.Checkout', {'prices': [2]}) == {'total': 2}
    assert call(connection, 'shop.cart.Checkout', {'prices': [2]}) == {'total': 2}
    # Nothing outside the method package, even below the same top package.
    assert call(connection, 'greet', {'name': 'x'})['error']['code'] == 1000


def run_toto_worker(services, args, timeout=30):
    """Run ``toto-worker`` (its entry point, under this Python) to its end."""
    import subprocess
    import sys
    from workerproc import child_env
    argv = [sys.executable, '-c', 'import sys; from toto.cli import worker_main; '
            'sys.exit(worker_main())'] + list(args)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=child_env(), cwd=services.directory)
    output = process.communicate(timeout=timeout)[0] if sys.version_info[0] >= 3 else \
        process.communicate()[0]
    return process.returncode, output.decode('utf-8', 'replace')


@pytest.mark.timeout(60)
def test_a_database_whose_driver_is_not_here_stops_the_start_with_one_line(services):
    from support import free_port
    # Without pymongo the start stops at the import; with it, at the connect check, which
    # a port nothing listens on fails within --database_timeout.
    status, output = run_toto_worker(
        services, services.service_args('nodb', method_module=APP) +
        ['--database=mongodb', '--db_port=%d' % free_port(), '--database_timeout=0.5'])

    assert status == 2, output
    assert 'mongodb' in output
    assert 'Traceback' not in output


@pytest.mark.timeout(60)
def test_toto_worker_accepts_options_the_method_package_defines(services):
    status, output = run_toto_worker(
        services, services.service_args('help', method_module=APP) +
        ['--app_greeting=Hej', '--dispatch=nonsense'])

    # The package's option is known; the start stops at the next mistake.
    assert status == 2, output
    assert 'dispatch must be one of' in output


@pytest.mark.timeout(60)
def test_remote_event_receivers_get_the_worker_events_and_the_init_module_runs(services):
    import threading

    from support import free_port

    from toto.events import EventManager
    port = free_port()
    received = []
    both = threading.Event()

    def record(args, name):
        received.append((name, args))
        if len(received) >= 2:
            both.set()

    listener = EventManager('tcp://127.0.0.1:%d' % port)
    listener.register_handler('app.event_init', lambda args: record(args, 'init'), persist=True)
    listener.register_handler('app.notified', lambda args: record(args, 'notified'),
                              persist=True)
    listener.start_listening()
    try:
        service, connection = start_app(services, [
            '--remote_event_receivers=tcp://127.0.0.1:%d' % port,
            '--event_init_module=app_methods.events_init'])
        wait_until_serving(connection, services)

        assert call(connection, 'notify', {'order': 'tea'}) == {'sent_to': 1}
        assert both.wait(10), (received, services.logs())
    finally:
        listener.close()

    names = dict(received)
    assert names['notified'] == {'order': 'tea'}
    assert isinstance(names['init']['pid'], int)
