"""How a worker service is configured and laid out (SPEC 6).

Configuration precedence: keyword arguments, then the conf file, then the command line,
each overriding the one before.  Layout beyond one machine: a router-only service
(``--processes=0``) in front of worker-only services (``--worker_bind_address=``).
"""

import glob
import re

import pytest
from workerproc import ServiceGroup, call, group_running, pids_answering


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def write_conf(services, name, text):
    path = services.path(name)
    with open(path, 'w') as conf:
        conf.write(text)
    return path


def started_count(service):
    counts = re.findall(r'started (\d+) TotoWorkerService process', service.output())
    assert counts, 'no start message logged\n' + service.describe()
    return int(counts[-1])


@pytest.mark.timeout(40)
def test_router_only_service_fronts_worker_only_services_on_other_addresses(services):
    workers_address = services.tcp()
    router = services.start(processes=0, wait=False,
                            args=['--worker_socket_address=' + workers_address])
    for _ in range(2):
        services.start(processes=2, address='', wait=False,
                       args=['--worker_socket_address=' + workers_address])
    connection = services.connect(router.address)

    answers = pids_answering(connection, 4, logs=services.logs)

    assert len(answers) == 4
    assert router.pid not in answers
    assert call(connection, 'echo', {'via': 'router'}) == {'via': 'router'}


@pytest.mark.timeout(30)
def test_conf_file_overrides_keyword_arguments(services):
    conf = write_conf(services, 'service.conf', 'processes = 2\n')
    service = services.start(processes=None, method_module=None, conf_file=conf,
                             kwargs={'processes': 1, 'method_module': 'worker_methods'})

    answers = pids_answering(services.connect(service.address), 2, logs=services.logs)

    assert started_count(service) == 2
    assert sorted(answer['service_id'] for answer in answers.values()) == [0, 1]


@pytest.mark.timeout(30)
def test_command_line_overrides_conf_file_and_keyword_arguments(services):
    conf = write_conf(services, 'service.conf', 'processes = 2\n')
    service = services.start(processes=3, conf_file=conf, kwargs={'processes': 1})

    answers = pids_answering(services.connect(service.address), 3, logs=services.logs)

    assert started_count(service) == 3
    assert sorted(answer['service_id'] for answer in answers.values()) == [0, 1, 2]


@pytest.mark.timeout(30)
def test_nodaemon_on_the_command_line_overrides_daemon_in_the_conf_file(services):
    pidfile = services.path('svc.pid')
    conf = write_conf(services, 'service.conf',
                      "daemon = 'start'\npidfile = %r\n" % pidfile)
    service = services.start(conf_file=conf, args=['--nodaemon'])

    assert service.is_running(), 'the service runs in the foreground'
    assert call(services.connect(service.address), 'echo', {'a': 1}) == {'a': 1}
    assert glob.glob(services.path('svc*.pid')) == []


@pytest.mark.timeout(30)
def test_method_module_that_cannot_be_imported_fails_the_start(services):
    service = services.start(method_module='no_such_methods_package', wait=False)

    assert service.wait_exit() != 0
    assert 'no_such_methods_package' in service.output()
    assert not group_running(service.pid), 'nothing of the service is left running'
