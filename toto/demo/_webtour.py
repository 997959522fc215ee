"""The demo's web half: a TotoServer in a process of its own, called as a client would.

:func:`web_tour` starts ``python -m toto.demo.webserver`` on a free port,
in front of the demo's ZeroMQ worker, and makes the calls a browser or a
phone makes: a plain call, a GET, a batch, an account, signed calls to an
``@authenticated`` method, a call the server hands to the worker, a logout::

    server = WebServer(worker_address='tcp://127.0.0.1:5555')
    server.start()
    try:
        report = IOLoop.current().run_sync(lambda: web_tour(server.url))
    finally:
        server.stop()

Signed calls follow 1.0.12's scheme: the request carries
``x-toto-hmac: base64(HMAC-SHA1(key, method + uri + body))`` and the
server's answer ``base64(HMAC-SHA1(key, session_id + body))``.
"""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from tornado import gen
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

# How long the server may take to start answering.
_START_TIMEOUT = 30.0
# How long it may take to stop after SIGTERM before it is killed.
_STOP_TIMEOUT = 10.0


def _sign(key, text):
    digest = hmac.new(key.encode('utf-8'), text.encode('utf-8'), hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


class WebServer(object):
    """``python -m toto.demo.webserver`` in a child process, with its accounts in a temp folder."""

    def __init__(self, worker_address, port):
        self.worker_address = worker_address
        self.port = port
        self.url = 'http://127.0.0.1:%d' % port
        self._folder = None
        self._process = None
        self._log = None

    def start(self):
        self._folder = tempfile.mkdtemp(prefix='toto-demo-')
        self._log = open(os.path.join(self._folder, 'server.log'), 'w+')
        argv = [sys.executable, '-m', 'toto.demo.webserver', '--port=%d' % self.port,
                '--bind_host=127.0.0.1', '--worker_address=%s' % self.worker_address,
                '--db_host=%s' % os.path.join(self._folder, 'accounts.json'),
                '--db_port=1', '--logging=warning']
        self._process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self):
        self._log.seek(0)
        return self._log.read()

    def running(self):
        return self._process is not None and self._process.poll() is None

    def stop(self):
        if self.running():
            # A graceful stop: the server finishes what it took, then exits.
            self._process.send_signal(signal.SIGTERM)
            deadline = time.time() + _STOP_TIMEOUT
            while self._process.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


class _Client(object):
    """A Toto HTTP client: JSON posts, the session header, request and answer signatures."""

    def __init__(self, url):
        self.url = url
        self.session_id = None
        self.key = None
        self.http = AsyncHTTPClient()

    @gen.coroutine
    def call(self, method, parameters=None, body=None, verb='POST', path='/'):
        if body is None and verb == 'POST':
            body = json.dumps({'method': method, 'parameters': parameters or {}})
        headers = {'content-type': 'application/json'}
        if self.session_id:
            headers['x-toto-session-id'] = self.session_id
            if self.key:
                headers['x-toto-hmac'] = _sign(self.key, verb + path + (body or ''))
        response = yield self.http.fetch(HTTPRequest(self.url + path, method=verb,
                                                     headers=headers, body=body),
                                         raise_error=False)
        text = response.body.decode('utf-8') if response.body else ''
        answer = json.loads(text) if text else None
        session = (answer or {}).get('session') or {}
        signature = response.headers.get('x-toto-hmac')
        signed_ok = None
        if self.key and signature and session.get('session_id'):
            # Native strings on both sides: Python 2 compares no str with unicode.
            signed_ok = hmac.compare_digest(
                str(signature), str(_sign(self.key, session['session_id'] + text)))
        if session.get('session_id'):
            self.session_id = session['session_id']
        result = (answer or {}).get('result')
        if isinstance(result, dict) and result.get('key'):
            self.key = result['key']
            self.session_id = result['session_id']
        raise gen.Return((answer, signed_ok))


def _result(answer):
    return (answer or {}).get('result')


def _error_code(answer):
    return ((answer or {}).get('error') or {}).get('code')


@gen.coroutine
def wait_until_serving(server, timeout=_START_TIMEOUT):
    """Wait until ``server`` answers ``hello``; raise with its log if it does not."""
    client = _Client(server.url)
    deadline = time.time() + timeout
    while True:
        if not server.running():
            raise RuntimeError('the demo web server exited:\n' + server.log())
        try:
            answer, _ = yield client.call('hello')
            if _result(answer) is not None:
                return
        except (IOError, OSError):
            pass  # not listening yet
        if time.time() > deadline:
            raise RuntimeError('the demo web server did not answer within %g s:\n%s'
                               % (timeout, server.log()))
        yield gen.sleep(0.05)


@gen.coroutine
def web_tour(url):
    """Make the demo's web calls; return rows ``(label, ms, shown answer, as expected)``."""
    client = _Client(url)
    user = 'demo-%d@example.com' % os.getpid()
    steps = [
        ('POST hello', lambda: client.call('hello', {'name': 'web'}),
         lambda answer, signed: _result(answer) == {'hello': 'web'}),
        ('GET /hello?name=get', lambda: client.call(None, verb='GET', path='/hello?name=get'),
         lambda answer, signed: _result(answer) == {'hello': 'get'}),
        ('batch of two', lambda: client.call(None, body=json.dumps({'batch': {
            'a': {'method': 'hello', 'parameters': {'name': 'a'}},
            'b': {'method': 'hello', 'parameters': {'name': 'b'}}}})),
         lambda answer, signed: (answer or {}).get('batch') == {
             'a': {'result': {'hello': 'a'}}, 'b': {'result': {'hello': 'b'}}}),
        ('account.create', lambda: client.call('account.create',
                                               {'user_id': user, 'password': 's3cret'}),
         lambda answer, signed: bool((_result(answer) or {}).get('key'))),
        ('counter, signed', lambda: client.call('counter'),
         lambda answer, signed: _result(answer) == {'count': 1} and signed),
        ('counter, signed', lambda: client.call('counter'),
         lambda answer, signed: _result(answer) == {'count': 2} and signed),
        ('worker_sum (via zmq)', lambda: client.call('worker_sum', {'numbers': [1, 2, 3]}),
         lambda answer, signed: _result(answer) == {'sum': 6, 'via': 'worker'}),
        ('account.logout', lambda: client.call('account.logout'),
         lambda answer, signed: _result(answer) == {'authenticated': False}),
        ('counter, logged out', lambda: client.call('counter'),
         lambda answer, signed: _error_code(answer) == 1004),
    ]
    report = []
    for label, make_call, expected in steps:
        started = time.time()
        answer, signed = yield make_call()
        elapsed = (time.time() - started) * 1000.0
        shown = answer
        if isinstance(answer, dict):
            # Session ids and keys change every run: show the answer's shape.
            shown = dict((name, value) for name, value in answer.items() if name != 'session')
            if isinstance(shown.get('result'), dict) and 'key' in shown['result']:
                shown = {'result': '{session_id, expires, user_id, key}'}
        report.append((label, elapsed, shown, bool(expected(answer, signed))))
    raise gen.Return(report)
