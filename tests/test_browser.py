"""A real browser against a real TotoServer: headless Chromium driven over the DevTools protocol.

Two TotoServers of this package serve ``web_app`` under ``root='/api'`` (one with
``hmac_enabled``, one with ``use_cookies``), each with ``tests/browser/browser_startup.py``
as its startup function (it serves the pages of tests/browser and logs what the browser
sent).  A plain Tornado server in the test serves the same pages from another origin.

- ``client.html``, on the test's origin, runs ``toto_client.js`` -- a client written from
  1.0.12's protocol, HMAC-SHA1 through WebCrypto -- against the HMAC server (a cross-origin
  API, so the browser's CORS checks run too): create an account, log in, call an
  ``@authenticated`` method with the request HMAC, check each answer's HMAC, be refused
  without or with a wrong HMAC, log out, and be refused after.
- ``cookie.html``, on the cookie server's origin, creates an account (the answer sets the
  session cookie) and calls with the cookie alone; then ``evil.html``, on the test's
  origin, posts an ordinary form to the same method.  The browser sends the cookie with
  it (the log shows it); this package refuses it, where 1.0.12 answered as the user.

Chromium comes from the Debian package ``chromium`` (``$TOTO_CHROMIUM`` names another);
without it the tests skip, except under CI, where they fail.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from tornado import gen, httpclient, websocket
from tornado.web import Application, StaticFileHandler

import oracle
import oracle_web
from oracle import SideFile
from oracle_web import WebSide
from support import LoopThread, free_port

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PAGES = os.path.join(TESTS_DIR, 'browser')
STARTUP_FUNCTION = 'browser_startup.init'
COOKIE_SECRET = 'a cookie secret for the browser test, not for use elsewhere'
#: Bounds: Chromium's start, a page's whole run, one DevTools command.
START_TIMEOUT = 20.0
PAGE_TIMEOUT = 20.0
COMMAND_TIMEOUT = 10.0


def chromium_binary():
    """Chromium's executable; skips the test without one (fails it under CI)."""
    names = [os.environ.get('TOTO_CHROMIUM'), 'chromium', 'chromium-browser']
    for name in names:
        if not name:
            continue
        if os.path.isabs(name) and os.access(name, os.X_OK):
            return name
        for folder in os.environ.get('PATH', '').split(os.pathsep):
            path = os.path.join(folder, name)
            if os.access(path, os.X_OK):
                return path
    message = 'no chromium to run (apt-get install chromium, or set TOTO_CHROMIUM)'
    if os.environ.get('CI'):
        pytest.fail(message + '; CI must run the browser tests')
    pytest.skip(message)


# -- Chromium over the DevTools protocol --------------------------------------------------------

# What Chromium answers a command that raced a navigation of the page (the evaluation
# ran in a document that has gone): the page is between documents, not broken.
_NAVIGATED = re.compile(r'navigated or closed|[Ee]xecution context was destroyed|'
                        r'Cannot find context')


class PageNavigated(AssertionError):
    """A DevTools command met the page while it navigated."""


class Chromium(object):
    """A headless Chromium with a profile of its own, driven through one page target.

    Commands go over the page's DevTools websocket on the test's loop thread; every wait
    is bounded.  :meth:`close` kills Chromium's whole process group.
    """

    def __init__(self, binary, loop):
        self.loop = loop
        self.profile = tempfile.mkdtemp(prefix='toto-chromium-')
        self.log_path = os.path.join(self.profile, 'chromium.log')
        argv = [binary, '--headless', '--disable-gpu', '--no-sandbox', '--no-first-run',
                '--no-default-browser-check', '--disable-extensions',
                '--disable-background-networking', '--disable-dev-shm-usage',
                '--user-data-dir=' + self.profile, '--remote-debugging-port=0', 'about:blank']
        if sys.version_info[0] >= 3:
            session = {'start_new_session': True}
        else:
            session = {'preexec_fn': os.setsid}
        with open(self.log_path, 'wb') as log, open(os.devnull, 'rb') as devnull:
            self.process = subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=log,
                                            close_fds=True, **session)
        self._socket = None
        self._next_id = 0
        try:
            port = self._devtools_port()
            self._socket = self.loop.run(lambda: self._connect(port), COMMAND_TIMEOUT * 2)
        except Exception:
            self.close()
            raise

    def _devtools_port(self):
        path = os.path.join(self.profile, 'DevToolsActivePort')
        deadline = time.time() + START_TIMEOUT
        while True:
            if os.path.exists(path):
                with open(path) as stream:
                    lines = stream.read().split('\n')
                if len(lines) >= 2 and lines[0].isdigit():
                    return int(lines[0])
            if self.process.poll() is not None or time.time() > deadline:
                raise AssertionError('Chromium did not start its DevTools server:\n'
                                     + self.log())
            time.sleep(0.05)

    @gen.coroutine
    def _connect(self, port):
        client = httpclient.AsyncHTTPClient()
        response = yield client.fetch('http://127.0.0.1:%d/json/list' % port,
                                      request_timeout=COMMAND_TIMEOUT)
        pages = [target for target in json.loads(response.body.decode('utf-8'))
                 if target['type'] == 'page']
        connection = yield websocket.websocket_connect(pages[0]['webSocketDebuggerUrl'],
                                                       connect_timeout=COMMAND_TIMEOUT)
        raise gen.Return(connection)

    def log(self):
        with open(self.log_path, 'rb') as stream:
            return stream.read().decode('utf-8', 'replace')[-4000:]

    @gen.coroutine
    def _command(self, method, params):
        self._next_id += 1
        number = self._next_id
        self._socket.write_message(json.dumps({'id': number, 'method': method,
                                               'params': params}))
        while True:
            message = yield gen.with_timeout(time.time() + COMMAND_TIMEOUT,
                                             self._socket.read_message())
            if message is None:
                raise AssertionError('Chromium closed the DevTools connection\n' + self.log())
            answer = json.loads(message)
            if answer.get('id') == number:
                if 'error' in answer:
                    error = answer['error']
                    if _NAVIGATED.search(error.get('message', '')):
                        raise PageNavigated('DevTools %s: %r' % (method, error))
                    raise AssertionError('DevTools %s failed: %r' % (method, error))
                raise gen.Return(answer.get('result'))

    def command(self, method, **params):
        return self.loop.run(lambda: self._command(method, params), COMMAND_TIMEOUT + 5)

    def navigate(self, url):
        self.command('Page.navigate', url=url)

    def evaluate(self, expression):
        """The JSON value of ``expression`` in the current page (None if it threw, or if
        the page navigated away while it ran: the pages here submit forms on their own)."""
        try:
            answer = self.command('Runtime.evaluate', expression=expression,
                                  returnByValue=True)
        except PageNavigated:
            return None
        if answer.get('exceptionDetails'):
            return None
        return answer['result'].get('value')

    def wait_for(self, expression, timeout=PAGE_TIMEOUT):
        """Evaluate ``expression`` until it is truthy; return its value."""
        deadline = time.time() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError('the page never made %s true (at %s)\n%s'
                                     % (expression, self.evaluate('location.href'),
                                        self.log()))
            time.sleep(0.05)

    def close(self):
        if self._socket is not None:
            socket, self._socket = self._socket, None
            self.loop.run(socket.close)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# -- the servers -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def loop():
    thread = LoopThread('browser-test-loop')
    yield thread
    thread.stop()


@pytest.fixture(scope='module')
def page_origin(loop):
    """The test's own origin: a Tornado server of the pages in tests/browser."""
    port = free_port()

    def listen():
        application = Application([(r'/(.*)', StaticFileHandler, {'path': PAGES})])
        return application.listen(port, address='127.0.0.1')
    server = loop.run(listen)
    yield 'http://127.0.0.1:%d' % port
    loop.run(server.stop)


@pytest.fixture
def chromium(loop):
    browser = Chromium(chromium_binary(), loop)
    yield browser
    browser.close()


def start_server(directory, python=None, env=None, **conf):
    """web_app under ``root='/api'`` with the pages' startup function; a started WebSide."""
    python = python or sys.executable
    if env is None:
        env = oracle._compat_env()
    env = dict(env)
    env['PYTHONPATH'] = os.pathsep.join(
        [PAGES] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    side = WebSide(oracle.COMPAT if python == sys.executable else oracle.ORIGINAL,
                   python, env, directory)
    options = {'method_module': 'web_app', 'port': free_port(), 'root': '/api',
               'database': 'json', 'db_host': SideFile('db.json', '{}'), 'db_port': 1,
               'startup_function': STARTUP_FUNCTION}
    options.update(conf)
    side.start_app('web_app', options)
    try:
        side.wait_ready()
    except Exception:
        side.end()
        raise
    return side


def _get_json(side, path):
    answer = oracle_web.http_exchange(side.port, ('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                                                  'Connection: close\r\n\r\n' % path).encode())
    return answer.json()


# -- the protocol ------------------------------------------------------------------------------

def test_the_protocol_from_a_browser_with_hmac(tmp_path, chromium, page_origin):
    _run_the_protocol(tmp_path, chromium, page_origin)


def _run_the_protocol(tmp_path, chromium, page_origin):
    server = start_server(str(tmp_path), hmac_enabled=True)
    try:
        user = 'browser-%s' % uuid.uuid4().hex[:8]
        chromium.navigate('%s/client.html?api=%s&user=%s'
                          % (page_origin, 'http://127.0.0.1:%d/api' % server.port, user))
        chromium.wait_for("document.getElementById('results').getAttribute('data-done')")
        steps = json.loads(chromium.evaluate("document.getElementById('results').textContent"))
    finally:
        server.end()
    assert steps['secure_context'] == {'secure': True, 'subtle': True}
    for name in ('create', 'login'):
        result = steps[name]['body']['result']
        assert steps[name]['status'] == 200, steps[name]
        assert result['user_id'] == user and len(result['key']) == 22, steps[name]
        assert steps[name]['hmac'] == 'valid', steps[name]
    assert steps['login']['body']['result']['key'] != steps['create']['body']['result']['key']
    assert steps['whoami']['body']['result'] == {'user_id': user}, steps['whoami']
    assert steps['whoami']['hmac'] == 'valid'
    for name in ('whoami_unsigned', 'whoami_wrong_hmac'):
        assert steps[name]['body']['error'] == {'code': 1008, 'value': 'Invalid HMAC'}, steps
        assert 'result' not in steps[name]['body']
    assert steps['logout']['body']['result'] == {'authenticated': False}, steps['logout']
    assert steps['logout']['hmac'] == 'valid'
    assert steps['whoami_after_logout']['body'] == {
        'error': {'code': 1004, 'value': 'Not authorized'}}, steps['whoami_after_logout']


# -- a cross-site form post with the session cookie -------------------------------------------

def run_cookie_pages(chromium, server, page_origin):
    """cookie.html on the server's origin, then evil.html on ours; what the browser got."""
    user = 'cookie-%s' % uuid.uuid4().hex[:8]
    target = 'http://127.0.0.1:%d/api/whoami' % server.port
    chromium.navigate('http://127.0.0.1:%d/page/cookie.html?user=%s&evil=%s/evil.html'
                      % (server.port, user, page_origin))
    chromium.wait_for('location.href === %s && document.readyState === "complete"'
                      % json.dumps(target))
    status = chromium.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
    text = chromium.evaluate('document.body ? document.body.innerText : ""')
    reports = _get_json(server, '/report')
    requests = _get_json(server, '/requests')
    return user, status, text, reports[-1], requests


def _cross_site_post(requests, page_origin):
    posts = [request for request in requests
             if request['verb'] == 'POST' and request['origin'] == page_origin]
    assert len(posts) == 1, requests
    return posts[0]


def test_a_cross_site_form_post_with_the_session_cookie_is_refused(tmp_path, chromium,
                                                                   page_origin):
    _refuse_the_cross_site_post(tmp_path, chromium, page_origin)


def _refuse_the_cross_site_post(tmp_path, chromium, page_origin):
    server = start_server(str(tmp_path), use_cookies=True, cookie_secret=COOKIE_SECRET)
    try:
        user, status, text, report, requests = run_cookie_pages(chromium, server, page_origin)
    finally:
        server.end()
    # From the server's own origin the cookie alone is a session.
    assert json.loads(report['whoami_by_cookie']['text'])['result'] == {'user_id': user}
    # Scripts cannot read the session cookie (HttpOnly).
    assert report['cookie_visible_to_script'] is False
    # The foreign page's form post carried the cookie ...
    post = _cross_site_post(requests, page_origin)
    assert post['cookie'] is True and post['path'] == '/api/whoami', post
    assert post['content_type'] == 'application/x-www-form-urlencoded'
    # ... and was refused: the browser got no answer as the user.
    assert user not in text, text
    assert status == 403 or '"error"' in text, (status, text)


def test_the_same_cross_site_post_was_answered_as_the_user_by_1_0_12(tmp_path, chromium,
                                                                     page_origin):
    """The contrast: 1.0.12 behind the same pages answers the foreign form as the user."""
    server = start_server(str(tmp_path), python=oracle.oracle_python(),
                          env=oracle._oracle_env(), use_cookies=True,
                          cookie_secret=COOKIE_SECRET)
    try:
        user, status, text, report, requests = run_cookie_pages(chromium, server, page_origin)
    finally:
        server.end()
    assert report['cookie_visible_to_script'] is True
    assert _cross_site_post(requests, page_origin)['cookie'] is True
    assert status == 200
    assert json.loads(text)['result'] == {'user_id': user}
