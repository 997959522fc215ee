"""Security: CURVE, the json safe mode, the exposure warning, size limits and TLS.

Every worker here is a real TotoWorkerService or TotoHTTPWorkerService process; keys and
certificates are made by the test.
"""

import json
import os
import pickle
import shutil
import sys
import threading
import time

import pytest
from faultkit import (EXPOSURE_WARNING, Failure, Process, Relay, Tally, child_env,
                      make_self_signed_certificate, pickled_call, raw_request, zmq_call)
from support import free_port, wait_until

#: Text that must never cross the wire in clear once CURVE is on.
MARKER = u'toto-plaintext-marker-5b0f3c'


class CreateFile(object):
    """Unpickling this runs ``open(path, 'w')``: it creates the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def make_curve_certificates(directory):
    """Server, client and intruder key pairs, and a folder authorising only the client."""
    import zmq.auth
    certificates = os.path.join(directory, 'certificates')
    authorized = os.path.join(directory, 'authorized')
    os.mkdir(certificates)
    os.mkdir(authorized)
    keys = {}
    for name in ('server', 'client', 'intruder'):
        keys[name] = zmq.auth.create_certificates(certificates, name)  # (public, secret)
    shutil.copy(keys['client'][0], authorized)
    return keys, authorized


def z85_text(certificate):
    import zmq.auth
    public, secret = zmq.auth.load_certificate(certificate)
    return (secret or public).decode('ascii')


@pytest.mark.timeout(40)
def test_curve_answers_authorised_clients_only_and_encrypts_the_wire(
        lab, fault_report, shared_options):
    import zmq
    if not zmq.has('curve'):
        pytest.skip('libzmq without CURVE')
    from toto.workerconnection import WorkerConnection
    keys, authorized = make_curve_certificates(lab.directory)
    server_public, server_secret = keys['server']
    client = (server_public, keys['client'][0], keys['client'][1])
    port = free_port()
    service = lab.zmq_service(port=port, bind='tcp://*:%d' % port, probe={'curve': client},
                              args=['--curve_secret_key=' + server_secret,
                                    '--curve_authorized_keys=' + authorized])
    plain_service = lab.zmq_service()
    curve_relay, plain_relay = Relay(port), Relay(int(plain_service.address.rsplit(':', 1)[1]))
    tally = Tally()
    try:
        authorised = lab.connect(curve_relay.address, timeout=2.0, curve=client)
        intruder = lab.connect(service.address, timeout=0.5, curve=(
            server_public, keys['intruder'][0], keys['intruder'][1]))
        wrong_server_key = lab.connect(service.address, timeout=0.5, curve=(
            keys['intruder'][0], keys['client'][0], keys['client'][1]))
        plain = lab.connect(service.address, timeout=0.5)
        in_clear = lab.connect(plain_relay.address, timeout=2.0)
        for n in range(3):
            for name, connection in (('intruder', intruder), ('plain', plain),
                                     ('wrong server key', wrong_server_key),
                                     ('authorised', authorised), ('in clear', in_clear)):
                connection.invoke('echo', {'secret': MARKER, 'n': n},
                                  callback=tally.callback((name, n)))
        finished = tally.wait_all(10)

        # The options path: --worker_curve_* reach WorkerConnection.instance() (Z85 text).
        shared_options.parse_command_line([
            'client', '--worker_address=' + service.address, '--worker_timeout=2',
            '--worker_curve_server_key=' + z85_text(server_public),
            '--worker_curve_public_key=' + z85_text(keys['client'][0]),
            '--worker_curve_secret_key=' + z85_text(keys['client'][1])], final=False)
        from_options = zmq_call(WorkerConnection.instance(), 'echo', {'n': 'options'})
        encrypted, clear = curve_relay.captured(), plain_relay.captured()
    finally:
        curve_relay.close()
        plain_relay.close()

    counts = tally.counts()
    fault_report('zmq: CURVE, authorised client, intruder and plain clients', counts,
                 transport='zmq', encrypted_bytes=len(encrypted), clear_bytes=len(clear))
    assert finished, counts
    tally.assert_exactly_once()
    marker = MARKER.encode('ascii')
    for n in range(3):
        assert tally.first(('authorised', n)) == {'secret': MARKER, 'n': n}
        assert tally.first(('in clear', n)) == {'secret': MARKER, 'n': n}
        for name in ('intruder', 'plain', 'wrong server key'):
            assert tally.first((name, n)) == {'error': 'timeout'}, (name, tally.first((name, n)))
    assert counts['answered'] == 6 and counts['timed_out'] == 9, counts
    assert from_options == {'n': 'options'}
    assert len(encrypted) > 3 * len(marker), 'the CURVE calls did not cross the relay'
    assert marker not in encrypted, 'CURVE traffic carries the parameters in clear'
    assert marker in clear, 'the relay missed the plain traffic: the check proves nothing'
    assert EXPOSURE_WARNING not in service.output(), 'CURVE protects a public bind address'


@pytest.mark.timeout(30)
def test_json_safe_mode_works_and_never_unpickles(lab, fault_report, shared_options):
    from toto.workerconnection import WorkerConnection
    json_zmq = lab.zmq_service(args=['--serialization_module=json'],
                               probe={'serialization': json})
    json_http = lab.http_service(args=['--serialization_module=json'],
                                 probe={'serialization': json,
                                        'serialization_mime': 'application/json'})
    pickle_zmq = lab.zmq_service()
    evil = lab.path('evil-%s')
    parameters = {'text': u'h\xe9llo \u2603', 'list': [1, 2.5, None], 'nested': {'a': True}}

    # The payload works: loading it here creates the file (then it is removed again).
    pickle.loads(pickled_call('echo', {'x': CreateFile(evil % 'control')}))
    assert os.path.exists(evil % 'control')
    os.remove(evil % 'control')

    # zmq: --worker_serialization_module=json against --serialization_module=json.
    shared_options.parse_command_line([
        'client', '--worker_address=' + json_zmq.address, '--worker_timeout=2',
        '--worker_serialization_module=json'], final=False)
    zmq_answer = zmq_call(WorkerConnection.instance(), 'echo', parameters)
    zmq_dealer = lab.raw_dealer(json_zmq.address)
    zmq_refusal = raw_request(zmq_dealer, [b'', b'evil', pickled_call(
        'echo', {'x': CreateFile(evil % 'zmq')})])
    zmq_after = zmq_call(WorkerConnection.instance(), 'pid')

    # http: the same with --worker_transport=http and a json Content-Type.
    shared_options.parse_command_line([
        'client', '--worker_transport=http', '--worker_address=' + json_http.address,
        '--worker_serialization_mime=application/json'], final=False)
    http_answer = lab.http(lambda: WorkerConnection.instance().invoke('echo', parameters))

    def post_pickle():
        from tornado.httpclient import AsyncHTTPClient
        return AsyncHTTPClient().fetch(
            json_http.address, method='POST', raise_error=False, request_timeout=5.0,
            headers={'Content-Type': 'application/pickle'},
            body=pickled_call('echo', {'x': CreateFile(evil % 'http')}))
    http_refusal = lab.http(post_pickle)
    http_after = lab.http(lambda: WorkerConnection.instance().invoke('pid', {}))

    # The contrast: a pickle worker runs whatever the payload says.
    pickle_answer = raw_request(lab.raw_dealer(pickle_zmq.address), [b'', b'evil', pickled_call(
        'echo', {'x': CreateFile(evil % 'pickle worker')})])

    fault_report('json safe mode: json calls work, pickled payloads are refused',
                 {'sent': 6, 'answered': 4, 'errors': 2}, transport='zmq+http')
    assert zmq_answer == parameters
    assert http_answer == parameters
    assert zmq_refusal is not None and zmq_refusal[:2] == [b'', b'evil']
    assert json.loads(zmq_refusal[2].decode('utf-8'))['error']['code'] == 1000
    assert http_refusal.code == 400
    assert json.loads(http_refusal.body.decode('utf-8'))['error']['code'] == 1000
    assert zmq_after == {'pid': json_zmq.first_answer['pid']}
    assert http_after == {'pid': json_http.first_answer['pid']}
    assert not os.path.exists(evil % 'zmq'), 'the json zmq worker unpickled the payload'
    assert not os.path.exists(evil % 'http'), 'the json http worker unpickled the payload'
    assert pickle_answer is not None
    assert os.path.exists(evil % 'pickle worker'), 'the contrast: a pickle worker unpickles'


@pytest.mark.timeout(30)
def test_exposure_warning_logged_once_for_public_pickle_workers_only(lab, fault_report):
    exposed_port, exposed_json_port = free_port(), free_port()
    exposed = lab.zmq_service(port=exposed_port, bind='tcp://*:%d' % exposed_port)
    exposed_json = lab.zmq_service(port=exposed_json_port, bind='tcp://*:%d' % exposed_json_port,
                                   args=['--serialization_module=json'],
                                   probe={'serialization': json})
    loopback = lab.zmq_service()
    http_exposed = lab.http_service(host='')
    http_loopback = lab.http_service()
    # A few more calls to the exposed workers: the warning stays at one.
    exposed_connection = lab.connect(exposed.address, timeout=2.0)
    for n in range(3):
        assert zmq_call(exposed_connection, 'echo', {'n': n}) == {'n': n}

    warnings = dict((service.name, service.output().count(EXPOSURE_WARNING))
                    for service in (exposed, exposed_json, loopback, http_exposed,
                                    http_loopback))
    fault_report('exposure warning: pickle on a public address without CURVE',
                 {'sent': 3, 'answered': 3}, warnings=warnings)
    assert warnings == {exposed.name: 1, exposed_json.name: 0, loopback.name: 0,
                        http_exposed.name: 1, http_loopback.name: 0}, lab.logs()


@pytest.mark.timeout(30)
def test_oversize_calls_are_refused_and_the_workers_keep_serving(lab, fault_report,
                                                                 shared_options):
    from toto.httpworkerconnection import HTTPWorkerConnection
    assert shared_options.max_message_size == 64 * 1024 * 1024, 'the default limit'
    zmq_service = lab.zmq_service(args=['--max_message_size=1000'])
    http_service = lab.http_service(args=['--max_message_size=1000'])
    big = {'blob': 'x' * 5000}
    tally = Tally()

    connection = lab.connect(zmq_service.address, timeout=0.5)
    for n in range(2):
        tally.register(('zmq oversize', n))
        tally.complete(('zmq oversize', n), zmq_call(connection, 'echo', big, timeout=0.5))
        # The router dropped the connection; the client reconnects by itself.
        tally.register(('zmq normal', n))
        tally.complete(('zmq normal', n), zmq_call(connection, 'pid', timeout=2.0))

    http_connection = HTTPWorkerConnection(http_service.address, timeout=2.0)
    slowest_refusal = 0.0
    for n in range(2):
        started = time.time()
        try:
            lab.http(lambda n=n: tally.future(('http oversize', n),
                                              http_connection.invoke('echo', big)))
        except Exception:
            pass  # counted by the tally
        slowest_refusal = max(slowest_refusal, time.time() - started)
        lab.http(lambda n=n: tally.future(('http normal', n),
                                          http_connection.invoke('pid', {})))

    def post_oversize():
        from tornado.httpclient import AsyncHTTPClient
        return AsyncHTTPClient().fetch(http_service.address, method='POST', raise_error=False,
                                       request_timeout=5.0, body=pickled_call('echo', big))
    raw_refusal = lab.http(post_oversize)
    tally.wait_all(5)

    counts = tally.counts()
    fault_report('limits: oversize calls refused (max_message_size=1000)', counts,
                 transport='zmq+http', http_status=raw_refusal.code,
                 http_body_bytes=len(raw_refusal.body or b''))
    tally.assert_exactly_once()
    for n in range(2):
        assert tally.first(('zmq oversize', n)) == {'error': 'timeout'}
        assert tally.first(('zmq normal', n)) == {'pid': zmq_service.first_answer['pid']}
        assert tally.first(('http normal', n)) == {'pid': http_service.first_answer['pid']}
    assert slowest_refusal < 1.5, 'an oversize http call took %.1f s' % slowest_refusal
    for n in range(2):
        refusal = tally.first(('http oversize', n))
        # The server refuses with a bare "400 Bad Request" (status %d, %d body bytes here):
        # the caller must see a failure, not a result that looks like a success.
        assert isinstance(refusal, Failure) or (
            isinstance(refusal, dict) and 'error' in refusal), (
            'a refused oversize http call completed with %r (HTTP %d, %d body bytes): the '
            'same as an acknowledged @asynchronous call' % (
                refusal, raw_refusal.code, len(raw_refusal.body or b'')))
    assert zmq_service.is_running() and http_service.is_running()


@pytest.mark.timeout(30)
def test_https_worker_with_a_self_signed_certificate(lab, fault_report, shared_options):
    from toto.exceptions import TotoException
    from toto.httpworkerconnection import HTTPWorkerConnection
    from toto.workerconnection import WorkerConnection
    made = make_self_signed_certificate(lab.directory)
    if made is None:
        pytest.skip('neither the cryptography package nor the openssl command is available')
    certificate, key = made
    # Python 2.7's ssl.match_hostname matches no IP address (it needs the ipaddress
    # module): call the worker by name there; the certificate names both.
    hostname = 'localhost' if sys.version_info[0] == 2 else '127.0.0.1'
    service = lab.http_service(https=True, hostname=hostname,
                               args=['--http_worker_certfile=' + certificate,
                                     '--http_worker_keyfile=' + key])
    pid = service.first_answer['pid']
    assert service.address.startswith('https://')
    tally = Tally()

    trusted = HTTPWorkerConnection(service.address, timeout=2.0)
    trusted.configure_tls(ca_file=certificate)
    default = HTTPWorkerConnection(service.address, timeout=2.0)
    unverified = HTTPWorkerConnection(service.address, timeout=2.0)
    unverified.configure_tls(validate_cert=False)
    cleartext = HTTPWorkerConnection(service.address.replace('https:', 'http:'), timeout=2.0)
    shared_options.parse_command_line([
        'client', '--worker_transport=http', '--worker_address=' + service.address,
        '--worker_ca_file=' + certificate], final=False)
    from_options = WorkerConnection.instance()

    def calls():
        for name, connection in (('trusted', trusted), ('default CAs', default),
                                 ('unverified', unverified), ('options', from_options),
                                 ('http to https', cleartext)):
            tally.future(name, connection.invoke('pid', {}))
    lab.http(calls)
    finished = tally.wait_all(10)

    counts = tally.counts()
    fault_report('tls: https worker with a self-signed certificate', counts,
                 transport='http')
    assert finished, counts
    tally.assert_exactly_once()
    assert tally.first('trusted') == {'pid': pid}
    assert tally.first('unverified') == {'pid': pid}
    assert tally.first('options') == {'pid': pid}
    for name in ('default CAs', 'http to https'):
        failure = tally.first(name)
        assert isinstance(failure, Failure), (name, failure)
        assert not isinstance(failure.error, TotoException), (name, failure)
        assert max(tally.latencies([name])) < 2.0, '%s: not a prompt failure' % name
    assert service.is_running()


def refusal_of(lab, args):
    """Start a ZeroMQ service that must refuse its options; return its exit code and log."""
    service = lab.zmq_service(args=args, wait=False)
    wait_until(lambda: not service.is_running(), timeout=20,
               message=lambda: 'the service started with %s\n%s' % (args, service.describe()))
    return service.process.returncode, service.output()


@pytest.mark.timeout(40)
def test_curve_authorized_keys_without_a_secret_key_refuses_to_start(lab, fault_report):
    import zmq
    if not zmq.has('curve'):
        pytest.skip('libzmq without CURVE')
    _keys, authorized = make_curve_certificates(lab.directory)
    # Before: the service started in plaintext and answered anyone.
    status, output = refusal_of(lab, ['--curve_authorized_keys=' + authorized])
    fault_report('curve: authorized keys without a secret key', {'refused': 1},
                 transport='zmq', exit_status=status)
    assert status != 0
    assert 'curve_secret_key is not' in output and 'plaintext' in output, output


@pytest.mark.timeout(40)
def test_curve_with_a_missing_authorized_keys_folder_says_so_at_once(lab, fault_report):
    import zmq
    if not zmq.has('curve'):
        pytest.skip('libzmq without CURVE')
    keys, _authorized = make_curve_certificates(lab.directory)
    missing = os.path.join(lab.directory, 'no-such-folder')
    # Before: a 10 s wait, then "the router did not bind" and tracebacks.
    status, output = refusal_of(lab, ['--curve_secret_key=' + keys['server'][1],
                                      '--curve_authorized_keys=' + missing])
    fault_report('curve: missing authorized-keys folder', {'refused': 1},
                 transport='zmq', exit_status=status)
    assert status != 0
    assert 'curve_authorized_keys must be a directory' in output and missing in output
    assert 'did not bind' not in output, output


@pytest.mark.timeout(40)
def test_toto_worker_reports_a_curve_mistake_in_one_line(lab):
    script = os.path.join(os.path.dirname(sys.executable), 'toto-worker')
    if not os.path.isfile(script):
        pytest.skip('toto-worker is not installed beside %s' % sys.executable)
    _keys, authorized = make_curve_certificates(lab.directory)
    command = Process('toto-worker', [
        script, '--method_module=toto.demo.methods',
        '--worker_bind_address=tcp://127.0.0.1:%d' % free_port(),
        '--worker_socket_address=' + lab.ipc('cli-w'),
        '--control_socket_address=' + lab.ipc('cli-c'),
        '--curve_authorized_keys=' + authorized], child_env(), lab.path('cli.log'),
        lab.directory)
    lab.processes.append(command)
    wait_until(lambda: not command.is_running(), timeout=20, message=command.describe)
    assert command.process.returncode == 2, command.describe()
    assert command.output().startswith('toto-worker: curve_authorized_keys is set'), (
        command.describe())
    assert 'Traceback' not in command.output()


def post_raw(lab, url, body, headers):
    """POST ``body`` with exactly ``headers``; return (status, Content-Type, body)."""
    def post():
        from tornado.httpclient import AsyncHTTPClient
        return AsyncHTTPClient().fetch(url, method='POST', raise_error=False,
                                       request_timeout=5.0, headers=headers, body=body,
                                       follow_redirects=False)
    response = lab.http(post)
    return response.code, response.headers.get('Content-Type'), response.body


@pytest.mark.timeout(40)
def test_a_web_page_cannot_make_a_pickle_http_worker_run_code(lab, fault_report):
    service = lab.http_service()
    evil = lab.path('evil-%s')
    port = service.address.rsplit(':', 1)[1].rstrip('/')
    # What a page can send anywhere without a CORS preflight (form posts, text/plain, a
    # Blob without a type), then what a DNS-rebound page sends to its "own" origin.
    attacks = [
        ('text/plain', {'Content-Type': 'text/plain'}),
        ('form', {'Content-Type': 'application/x-www-form-urlencoded'}),
        ('multipart', {'Content-Type': 'multipart/form-data; boundary=x'}),
        ('no type', {}),
        ('cross-site origin', {'Content-Type': 'application/pickle',
                               'Origin': 'http://attacker.example'}),
        ('rebound host and origin', {'Content-Type': 'application/pickle',
                                     'Host': 'rebind.attacker.example:' + port,
                                     'Origin': 'http://rebind.attacker.example:' + port}),
        ('rebound host', {'Content-Type': 'application/pickle',
                          'Host': 'rebind.attacker.example:' + port}),
        ('unknown type', {'Content-Type': 'application/octet-stream'}),
    ]
    answers = {}
    for name, headers in attacks:
        body = pickled_call('echo', {'x': CreateFile(evil % name.replace('/', '-'))})
        answers[name] = post_raw(lab, service.address, body, headers)
    # The worker still serves real clients, by address and by localhost.
    served = post_raw(lab, service.address, pickled_call('echo', {'n': 1}),
                      {'Content-Type': 'application/pickle'})
    by_name = post_raw(lab, service.address, pickled_call('echo', {'n': 2}),
                       {'Content-Type': 'application/pickle', 'Host': 'localhost:' + port})
    created = sorted(name for name, _headers in attacks
                     if os.path.exists(evil % name.replace('/', '-')))
    fault_report('http worker: requests a web page can make', {
        'sent': len(attacks), 'refused': sum(1 for a in answers.values() if a[0] in (403, 415)),
        'ran code': len(created)}, transport='http',
        statuses=dict((name, answer[0]) for name, answer in answers.items()))
    assert created == [], 'the worker unpickled requests a web page can send: %s' % created
    for name, (status, content_type, body) in answers.items():
        if name == 'multipart' and status == 400:
            continue  # Tornado 6 itself refuses a body that is not valid multipart
        expected = 415 if name in ('text/plain', 'form', 'multipart', 'no type',
                                   'unknown type') else 403
        assert status == expected, (name, status, body)
        assert content_type == 'application/pickle', (name, content_type)
        assert pickle.loads(body)['error']['code'] == 1000, name
    assert served[0] == 200 and pickle.loads(served[2]) == {'n': 1}
    assert by_name[0] == 200 and pickle.loads(by_name[2]) == {'n': 2}
    assert service.is_running()


@pytest.mark.timeout(40)
def test_http_worker_answers_the_hosts_it_is_told_to_and_json_in_its_own_type(lab):
    service = lab.http_service(args=['--serialization_module=json',
                                     '--http_worker_allowed_hosts=workers.internal,.corp.example'],
                               probe={'serialization': json})
    port = service.address.rsplit(':', 1)[1].rstrip('/')
    call = json.dumps({'method': 'echo', 'parameters': {'n': 1}}).encode('ascii')
    answers = dict((host, post_raw(lab, service.address, call, {
        'Content-Type': 'application/json', 'Host': host}))
        for host in ('workers.internal:' + port, 'a.corp.example', 'corp.example:' + port,
                     'evilcorp.example', 'workers.internal.attacker.example'))
    # A JSON worker still refuses what a page can send without a preflight...
    page = post_raw(lab, service.address, call, {'Content-Type': 'text/plain'})
    # ...and answers in its serializer's type, not in the one the request claimed.
    claimed = post_raw(lab, service.address, call, {'Content-Type': 'text/html; x=1'})
    other = post_raw(lab, service.address, call, {'Content-Type': 'application/pickle'})
    for host in ('workers.internal:' + port, 'a.corp.example', 'corp.example:' + port):
        assert answers[host][0] == 200 and json.loads(answers[host][2]) == {'n': 1}, host
    for host in ('evilcorp.example', 'workers.internal.attacker.example'):
        assert answers[host][0] == 403, host
        assert 'not one this worker serves' in json.loads(answers[host][2])['error']['value']
    assert page[0] == 415
    assert claimed[0] == 200 and claimed[1] == 'application/json'
    assert other[0] == 200 and other[1] == 'application/json'
    assert json.loads(other[2]) == {'n': 1}


def zmq_and_http_answers(lab, zmq_service, http_service, calls, codec_args=None):
    """Each call of ``calls`` ((method, parameters) or raw bytes) to both services.

    Returns {index: (zmq answer, (http status, http answer))}.
    """
    from toto._codec import MessageCodec
    codec = MessageCodec(**(codec_args or {}))
    dealer = lab.raw_dealer(zmq_service.address)
    answers = {}
    for index, request in enumerate(calls):
        body = request if isinstance(request, bytes) else codec.dumps(
            {'method': request[0], 'parameters': request[1]})
        frames = raw_request(dealer, [b'', b'%d' % index, body], timeout=20.0)
        zmq_answer = codec.loads(frames[2]) if frames else None
        status, _type, http_body = post_raw(lab, http_service.address, body,
                                            {'Content-Type': 'application/pickle'})
        try:
            http_answer = codec.loads(http_body)
        except Exception:
            http_answer = http_body[:200]
        answers[index] = (zmq_answer, (status, http_answer))
    return answers


@pytest.mark.timeout(60)
def test_method_names_resolve_only_inside_the_method_package(lab, fault_report):
    zmq_service, http_service = lab.zmq_service(), lab.http_service()
    answers = zmq_and_http_answers(lab, zmq_service, http_service, [
        ('reexports.toto.demo.methods.greet', {'name': 'intruder'}),
        ('reexports.echo_again', {'n': 1}),
        ('reexports', {}),
    ])
    fault_report('method names outside the method package', {'sent': 6}, transport='zmq+http')
    escaped_zmq, (escaped_status, escaped_http) = answers[0]
    # Before: the demo's greet ran, {'greeting': 'Hello, intruder!'}.
    assert escaped_zmq['error']['code'] == 1000, escaped_zmq
    assert 'is not a method of fault_methods' in escaped_zmq['error']['value']
    assert escaped_status == 404 and escaped_http == escaped_zmq
    assert answers[1] == ({'n': 1}, (200, {'n': 1}))
    assert answers[2] == ({'reexports': True}, (200, {'reexports': True}))


@pytest.mark.timeout(60)
def test_odd_method_names_get_the_same_short_error_on_both_transports(lab, fault_report):
    zmq_service, http_service = lab.zmq_service(), lab.http_service()
    names = [u'm\xe9thode', u'\u2603', 'a\x00b', 'a/b', '../echo', 'echo/', '.echo', 'echo.',
             'pid..pid', '_files', 'x' * 1000000]
    answers = zmq_and_http_answers(lab, zmq_service, http_service,
                                   [(name, {}) for name in names])
    after = zmq_and_http_answers(lab, zmq_service, http_service, [('echo', {'ok': 1})])
    fault_report('odd method names', {'sent': 2 * len(names)}, transport='zmq+http',
                 statuses=[answer[1][0] for answer in answers.values()])
    for index, name in enumerate(names):
        zmq_answer, (status, http_answer) = answers[index]
        assert status == 404, (name[:20], status, http_answer)
        assert zmq_answer == http_answer, name[:20]
        assert zmq_answer['error']['code'] == 1000
        assert len(zmq_answer['error']['value']) < 200, name[:20]
    assert after[0] == ({'ok': 1}, (200, {'ok': 1}))
    # A 1 MB name is not a 1 MB log line (nor a traceback) in either service's log.
    for service in (zmq_service, http_service):
        assert 'x' * 1000 not in service.output(), service.name
        assert 'Traceback' not in service.output(), service.describe()


def zlib_bomb(inflated_megabytes):
    """A zlib stream of a call's size that inflates to ``inflated_megabytes`` MB."""
    import zlib
    deflater = zlib.compressobj(9)
    zeros = b'\0' * (1024 * 1024)
    parts = [deflater.compress(zeros) for _ in range(inflated_megabytes)]
    return b''.join(parts) + deflater.flush()


def peak_memory_kb(pid):
    with open('/proc/%d/status' % pid) as status:
        for line in status:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise AssertionError('no VmHWM for %d' % pid)


@pytest.mark.timeout(90)
def test_a_zlib_bomb_is_refused_at_the_size_limit_on_both_transports(lab, fault_report):
    import zlib
    args = ['--compression_module=zlib', '--max_message_size=4000000']
    zmq_service = lab.zmq_service(args=args, probe={'compression': zlib})
    http_service = lab.http_service(args=args, probe={'compression': zlib})
    pids = [zmq_service.first_answer['pid'], http_service.first_answer['pid']]
    before = [peak_memory_kb(pid) for pid in pids]
    bomb = zlib_bomb(400)   # about 400 KB that inflate to 400 MB
    answers = zmq_and_http_answers(lab, zmq_service, http_service, [bomb],
                                   codec_args={'compression': zlib})
    after = zmq_and_http_answers(lab, zmq_service, http_service, [('echo', {'ok': 1})],
                                 codec_args={'compression': zlib})
    growth = [(peak_memory_kb(pid) - start) // 1024 for pid, start in zip(pids, before)]
    fault_report('zlib bomb: %d bytes that inflate to 400 MB' % len(bomb), {'sent': 2},
                 transport='zmq+http', peak_growth_mb=growth)
    zmq_answer, (status, http_answer) = answers[0]
    assert status == 400, (status, http_answer)
    for answer in (zmq_answer, http_answer):
        assert answer['error']['code'] == 1000
        assert 'inflates to more than 4000000 bytes' in answer['error']['value'], answer
    assert after[0] == ({'ok': 1}, (200, {'ok': 1}))
    # The workers' peak memory did not take in the 400 MB (the bound is 4 MB).
    assert max(growth) < 100, growth


class ForgingWorker(object):
    """A hostile worker service on a free loopback port, in a thread of the test.

    It answers each call it receives with ``{'from': 'hostile'}``, then forges
    ``{'forged': True}`` answers for the next ``ahead`` message ids the same client
    will use: ids are a fixed prefix and a counter, so one call gives the rest away.
    """

    def __init__(self, ahead=3):
        import zmq
        self.ahead = ahead
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.port = self.router.bind_to_random_port('tcp://127.0.0.1')
        self.address = 'tcp://127.0.0.1:%d' % self.port
        self.received = 0
        self.forged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name='forging-worker')
        self._thread.daemon = True
        self._thread.start()

    def _serve(self):
        import zmq
        while not self._stop.is_set():
            if not self.router.poll(20):
                continue
            identity, _empty, message_id, _payload = self.router.recv_multipart()
            self.received += 1
            self.router.send_multipart([identity, b'', message_id,
                                        json.dumps({'from': 'hostile'}).encode('ascii')])
            prefix, counter = message_id[:24], int(message_id[24:], 16)
            for step in range(1, self.ahead + 1):
                guess = prefix + (b'%012x' % ((counter + step) & 0xffffffffffff))
                self.router.send_multipart([identity, b'', guess,
                                            json.dumps({'forged': True}).encode('ascii')],
                                           zmq.NOBLOCK)
                self.forged += 1

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.router.close(0)
        self.context.term()


@pytest.mark.timeout(60)
def test_a_hostile_worker_cannot_answer_calls_sent_to_another_worker(lab, fault_report):
    honest = lab.zmq_service(args=['--serialization_module=json'],
                             probe={'serialization': json})
    hostile = ForgingWorker()
    try:
        connection = lab.connect(hostile.address + ',' + honest.address, timeout=10.0,
                                 serialization=json)
        # Until both links are up (calls go only to connected workers): each has
        # answered a call.
        answered_by = set()

        def both_answered():
            answer = zmq_call(connection, 'pid', timeout=1.0)
            answered_by.add('hostile' if answer == {'from': 'hostile'} else repr(answer))
            return len(answered_by) >= 2 and repr(honest.first_answer) in answered_by
        wait_until(both_answered, timeout=10)
        warm_up = hostile.received
        tally = Tally()
        # The honest worker takes its time, so forged answers arrive first.
        for n in range(10):
            connection.invoke('late', {'seconds': 0.2}, callback=tally.callback(n))
        tally.wait_all(20)
    finally:
        hostile.close()
    hostile.received -= warm_up
    results = [tally.first(n) for n in range(10)]
    fault_report('hostile worker forging answers for predicted ids', tally.counts(),
                 transport='zmq', forged=hostile.forged, received=hostile.received)
    tally.assert_exactly_once()
    assert hostile.forged >= 3, 'the hostile worker got no call: the test proves nothing'
    # Calls sent to the hostile worker are its to answer, with a forgery or not; each
    # call sent to the honest worker has the honest answer.
    honest_answer = {'pid': honest.first_answer['pid'], 'late': True}
    from_hostile = [result for result in results if result != honest_answer]
    assert len(from_hostile) == hostile.received, results
    assert all(result in ({'from': 'hostile'}, {'forged': True})
               for result in from_hostile), results
    assert 0 < hostile.received < 10
