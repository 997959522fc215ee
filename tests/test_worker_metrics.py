"""The worker service's Prometheus endpoint (``--metrics_port``), scraped over HTTP.

Each test starts ``workerservice.py`` (a real TotoWorkerService: parent, router and worker
processes) with ``--metrics_port`` on a free loopback port, calls it with
ZMQWorkerConnection and reads ``/metrics`` the way Prometheus does.  Its metrics
directory is made under a ``TMPDIR`` of the test's own, so the test can see it come and go.
"""

import os
import re
import signal
import socket
import stat
import subprocess
import sys

import pytest
from six.moves.urllib.request import ProxyHandler, build_opener
from support import free_port, wait_until
from workerproc import ServiceGroup, call, child_env, wait_for_answer

# The router's gauges exist only with balanced dispatch (the queue mode's router is a
# plain zmq device).
BALANCED = os.environ.get('TOTO_TEST_DISPATCH', 'balanced') == 'balanced'
# How long a metric may take to show what the service did: the router updates its
# gauges once a second, the parent looks for ended processes five times a second.
METRIC_WAIT = 10.0

_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    """A TMPDIR for the services this test starts: where their metrics directory goes."""
    directory = tmp_path / 'tmp'
    directory.mkdir()
    monkeypatch.setenv('TMPDIR', str(directory))
    return str(directory)


@pytest.fixture
def services(tmp_path, tmpdir_env):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def metrics_directories(tmpdir):
    return [os.path.join(tmpdir, name) for name in os.listdir(tmpdir)
            if name.startswith('toto-metrics-')]


def scrape(port, path='/metrics'):
    """The text of ``http://127.0.0.1:port/path`` (no proxy, whatever the environment says)."""
    opener = build_opener(ProxyHandler({}))
    response = opener.open('http://127.0.0.1:%d%s' % (port, path), timeout=5)
    try:
        return response.read().decode('utf-8')
    finally:
        response.close()


def parse(text):
    """``{(name, ((label, value), ...)): value}`` for each sample of an exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        match = _SAMPLE.match(line)
        assert match, 'not a sample line: %r' % line
        name, labels, value = match.groups()
        key = (name, tuple(sorted(_LABEL.findall(labels or ''))))
        samples[key] = float(value)
    return samples


def sample(samples, name, **labels):
    """The value of one sample, or None when the endpoint has no such sample."""
    return samples.get((name, tuple(sorted(labels.items()))))


def metric_becomes(port, name, value, **labels):
    """Scrape until the sample has ``value``; return the last samples read."""
    found = []

    def check():
        found[:] = [parse(scrape(port))]
        return sample(found[0], name, **labels) == value

    wait_until(check, METRIC_WAIT, interval=0.05,
               message=lambda: '%s%r never became %r (last %r)'
                       % (name, labels, value, found and sample(found[0], name, **labels)))
    return found[0]


def start(services, processes=1):
    port = free_port()
    service = services.start(processes=processes, args=['--metrics_port=%d' % port])
    return service, port


@pytest.mark.timeout(30)
def test_calls_are_counted_by_method_and_outcome_and_timed(services):
    service, port = start(services, processes=2)
    connection = services.connect(service.address)

    for index in range(3):
        assert call(connection, 'echo', {'index': index}) == {'index': index}
    for _ in range(2):
        assert call(connection, 'toto_error')['error']['code'] == 4242
    assert call(connection, 'plain_error')['error']['code'] == 1000
    assert call(connection, 'waits', {'n': 1})['n'] == 1
    assert call(connection, 'waits', {'fail': 'late'})['error']['code'] == 4343
    # Names that resolve to no method: one label value for all of them.
    assert call(connection, 'no_such_method')['error']['code'] == 1000
    assert call(connection, 'x' * 600)['error']['code'] == 1000
    dealer = services.raw_dealer(service.address)
    dealer.send_multipart([b'', b'undecodable', b'not a call'])
    assert dealer.poll(10000), 'no answer to an undecodable call'
    assert dealer.recv_multipart()[:2] == [b'', b'undecodable']

    samples = parse(scrape(port))
    calls = 'toto_worker_calls_total'
    assert sample(samples, calls, method='echo', outcome='ok') == 3
    assert sample(samples, calls, method='toto_error', outcome='error') == 2
    assert sample(samples, calls, method='plain_error', outcome='error') == 1
    assert sample(samples, calls, method='waits', outcome='ok') == 1
    assert sample(samples, calls, method='waits', outcome='error') == 1
    assert sample(samples, calls, method='<unknown>', outcome='rejected') == 3
    assert sample(samples, calls, method='echo', outcome='error') is None
    methods = set(dict(labels).get('method') for (_, labels) in samples) - set([None])
    assert methods == set(['echo', 'toto_error', 'plain_error', 'waits', 'pid',
                           '<unknown>']), methods

    durations = 'toto_worker_call_duration_seconds'
    assert sample(samples, durations + '_count', method='echo') == 3
    assert sample(samples, durations + '_bucket', method='echo', le='+Inf') == 3
    assert sample(samples, durations + '_count', method='waits') == 2
    # The coroutine waited 10 ms: that is in its time, to its end.
    assert sample(samples, durations + '_sum', method='waits') >= 0.01
    assert sample(samples, durations + '_count', method='<unknown>') is None
    assert sample(samples, 'toto_worker_restarts_total') == 0

    if BALANCED:
        samples = metric_becomes(port, 'toto_worker_processes', 2, state='idle')
        assert sample(samples, 'toto_worker_processes', state='busy') == 0
        assert sample(samples, 'toto_worker_processes', state='silent') == 0
        assert sample(samples, 'toto_worker_calls_queued') == 0


@pytest.mark.timeout(30)
def test_asynchronous_methods_count_when_their_work_ends(services):
    service, port = start(services)
    connection = services.connect(service.address)
    gate, output = services.path('gate'), services.path('output')
    open(gate, 'w').close()

    assert call(connection, 'write_later', {'gate': gate, 'output': output}) is None
    assert call(connection, 'write_later_coroutine', {'fail': True}) is None
    assert call(connection, 'write_later_coroutine', {'output': output + '-2'}) is None

    wait_until(lambda: os.path.exists(output + '-2'), METRIC_WAIT,
               message='the coroutine never wrote')
    calls = 'toto_worker_calls_total'
    metric_becomes(port, calls, 1, method='write_later_coroutine', outcome='ok')
    samples = metric_becomes(port, calls, 1, method='write_later_coroutine', outcome='error')
    assert sample(samples, calls, method='write_later', outcome='ok') == 1
    # Timed to the end of the coroutines, which wait 50 ms each.
    assert sample(samples, 'toto_worker_call_duration_seconds_sum',
                  method='write_later_coroutine') >= 0.1


@pytest.mark.timeout(30)
def test_killed_worker_process_counts_a_restart_and_its_calls_stay_counted(services):
    service, port = start(services)
    connection = services.connect(service.address)
    for _ in range(2):
        assert call(connection, 'echo', {}) == {}
    first = call(connection, 'pid')['pid']

    os.kill(first, signal.SIGKILL)

    samples = metric_becomes(port, 'toto_worker_restarts_total', 1)
    assert sample(samples, 'toto_worker_calls_total', method='echo', outcome='ok') == 2
    second = wait_for_answer(connection, logs=services.logs)
    assert second['pid'] != first
    assert call(connection, 'echo', {}) == {}
    samples = parse(scrape(port))
    assert sample(samples, 'toto_worker_calls_total', method='echo', outcome='ok') == 3
    assert sample(samples, 'toto_worker_call_duration_seconds_count', method='echo') == 3


@pytest.mark.timeout(30)
def test_metrics_directory_is_private_and_removed_when_the_service_stops(services,
                                                                         tmpdir_env):
    service, port = start(services)
    directories = metrics_directories(tmpdir_env)
    assert len(directories) == 1, directories
    assert stat.S_IMODE(os.stat(directories[0]).st_mode) == 0o700
    assert 'toto_worker_restarts_total 0.0' in scrape(port).splitlines()
    with pytest.raises(Exception) as elsewhere:
        scrape(port, '/other')
    assert getattr(elsewhere.value, 'code', None) == 404

    service.end()

    assert service.process.returncode is not None
    assert metrics_directories(tmpdir_env) == []
    assert 'serving metrics on http://127.0.0.1:%d/metrics' % port in service.output()
    probe = socket.socket()
    try:
        assert probe.connect_ex(('127.0.0.1', port)) != 0, 'still listening'
    finally:
        probe.close()


@pytest.mark.timeout(30)
def test_taken_metrics_port_stops_the_start_and_leaves_no_directory(services, tmpdir_env):
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        service = services.start(args=['--metrics_port=%d' % port], wait=False)
        assert service.wait_exit() != 0
    finally:
        taken.close()
    output = service.output()
    assert 'cannot serve metrics on 127.0.0.1:%d' % port in output
    assert 'process started' not in output, 'no process may start'
    assert metrics_directories(tmpdir_env) == []


# The toto-worker command with prometheus_client blocked (a None entry in sys.modules
# is how Python marks a module that must not be imported).
_WITHOUT_PROMETHEUS = ('import sys; sys.modules["prometheus_client"] = None; '
                       'from toto.cli import worker_main; sys.exit(worker_main(sys.argv[1:]))')
_WITH_PROMETHEUS = 'import sys; from toto.cli import worker_main; ' \
                   'sys.exit(worker_main(sys.argv[1:]))'


@pytest.mark.timeout(30)
@pytest.mark.parametrize('script, option, message', [
    (_WITHOUT_PROMETHEUS, '--metrics_port=%d' % free_port(),
     'toto-worker: metrics_port is set but prometheus_client is not installed: '
     'pip install "toto-compat[metrics]"'),
    (_WITH_PROMETHEUS, '--metrics_port=70000',
     'toto-worker: metrics_port must be a TCP port from 1 to 65535 (or 0: off), not 70000'),
], ids=['prometheus-client-missing', 'port-out-of-range'])
def test_toto_worker_refuses_to_start_with_one_line(services, tmpdir_env, script, option,
                                                    message):
    argv = [sys.executable, '-c', script, option] + services.service_args('refused') + [
        '--worker_bind_address=' + services.tcp()]
    process = subprocess.Popen(argv, env=child_env(), cwd=services.directory,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output, errors = process.communicate()

    assert process.returncode == 2, (output, errors)
    assert errors.decode('utf-8').splitlines() == [message]
    assert metrics_directories(tmpdir_env) == []

