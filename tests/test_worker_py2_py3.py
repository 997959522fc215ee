"""Python 2.7 and Python 3 peers on the default pickle wire (SPEC 5).

A Python 3 client calls a worker service running under Python 2.7, and a Python 2.7
client calls a worker service running under Python 3, with text and bytes in the
parameters and in the results.  What arrives:

* text arrives as text;
* a Python 2 ``str`` that is valid UTF-8 arrives on Python 3 as text;
* bytes that are not UTF-8 arrive as bytes (a Python 2 ``str`` on Python 2).

The Python 2.7 interpreter (with tornado 5.1, pyzmq 19, six and futures) comes from the
``TOTO_PYTHON2`` environment variable.  These tests run on Python 3 only; without
``TOTO_PYTHON2`` they are skipped, or fail when ``CI`` is set.
"""

import binascii
import json
import os
import subprocess
import sys
import zlib

import pytest
from workerproc import REPO_ROOT, ServiceGroup, call, child_env, wait_for_answer

TEXT = u'h\xe9llo \u2603'
NOT_UTF8 = b'\xff\x00'
UTF8 = TEXT[:5].encode('utf-8')

pytestmark = pytest.mark.skipif(sys.version_info[0] < 3,
                                reason='the Python 3 side of the Python 2 <-> 3 tests')


@pytest.fixture(scope='module')
def python2():
    """The Python 2.7 interpreter from TOTO_PYTHON2, checked to have toto's dependencies."""
    path = os.environ.get('TOTO_PYTHON2')
    if not path or not os.path.isfile(path):
        message = ('TOTO_PYTHON2 is %s: it must name a Python 2.7 with tornado 5.1, '
                   'pyzmq 19, six and futures' % ('%r, not a file' % path if path else 'not set'))
        if os.environ.get('CI'):
            pytest.fail(message + ' (CI is set, so these tests may not be skipped)')
        pytest.skip(message)
    check = ('import sys, six, tornado, zmq, concurrent.futures, toto.worker; '
             'print("%d %s %s" % (sys.version_info[0], tornado.version, zmq.__version__))')
    process = subprocess.Popen([path, '-c', check], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=child_env(path), cwd=REPO_ROOT)
    output = process.communicate(timeout=60)[0].decode('utf-8', 'replace')
    assert process.returncode == 0, 'TOTO_PYTHON2=%s cannot run toto:\n%s' % (path, output)
    assert output.split()[0] == '2', 'TOTO_PYTHON2=%s is not Python 2: %s' % (path, output)
    return path


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def hexed(data):
    return 'hex:' + binascii.hexlify(data).decode('ascii')


@pytest.mark.timeout(60)
def test_python3_client_and_python2_worker_exchange_text_and_bytes(python2, services):
    service = services.start(python=python2)
    connection = services.connect(service.address)

    answer = call(connection, 'values', {'text': TEXT, 'bytes': NOT_UTF8, 'utf8': UTF8})

    assert answer['interpreter'] == 2
    # What the Python 2 worker received: text as unicode, bytes as str.
    assert answer['received'] == {
        'text': ['unicode', TEXT],
        'bytes': ['str', NOT_UTF8],
        # A Python 3 bytes value is a Python 2 str, which comes back as text when UTF-8.
        'utf8': ['str', TEXT[:5]],
    }
    # What it sent: unicode arrives as text, a UTF-8 str as text, other bytes as bytes.
    assert answer['sent'] == {'text': TEXT, 'bytes': NOT_UTF8, 'utf8': TEXT[:5]}
    assert call(connection, 'echo', {'text': TEXT, 'bytes': NOT_UTF8}) == \
        {'text': TEXT, 'bytes': NOT_UTF8}


@pytest.mark.timeout(60)
def test_python3_client_gets_python2_workers_error_answers(python2, services):
    service = services.start(python=python2)
    connection = services.connect(service.address)

    assert call(connection, 'toto_error', {'code': 4242, 'value': 'x'}) == \
        {'error': {'code': 4242, 'value': 'x'}}
    assert call(connection, 'bad_method') == \
        {'error': {'code': 1000, 'value': "'module' object has no attribute 'bad_method'"}}


@pytest.mark.timeout(60)
def test_python2_client_and_python3_worker_exchange_text_and_bytes(python2, services):
    service = services.start()

    result = services.run_client(python2, service.address, 'values')

    assert result.returncode == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report['interpreter'] == ['int', 3]
    # What the Python 3 worker received (type names and values, as seen by Python 2):
    # unicode as text, a UTF-8 str as text, other bytes as bytes.
    assert report['received'] == {
        'text': [['unicode', 'str'], ['unicode', TEXT]],
        'bytes': [['unicode', 'bytes'], ['str', hexed(NOT_UTF8)]],
        'utf8': [['unicode', 'str'], ['unicode', TEXT[:5]]],
    }
    # What the Python 2 client got: text as unicode, bytes as str.
    assert report['sent'] == {
        'text': ['unicode', TEXT],
        'bytes': ['str', hexed(NOT_UTF8)],
        'utf8': ['str', hexed(UTF8)],
    }


@pytest.mark.timeout(60)
def test_json_and_zlib_work_between_a_python3_client_and_a_python2_worker(python2, services):
    service = services.start(python=python2, wait=False,
                             args=['--serialization_module=json', '--compression_module=zlib'])
    connection = services.connect(service.address, serialization=json, compression=zlib)
    wait_for_answer(connection, logs=services.logs, alive=service.is_running)

    assert call(connection, 'echo', {'text': TEXT, 'list': [1, 2.5, None]}) == \
        {'text': TEXT, 'list': [1, 2.5, None]}
    assert call(connection, 'toto_error', {'code': 4242, 'value': TEXT}) == \
        {'error': {'code': 4242, 'value': TEXT}}
