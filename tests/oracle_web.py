"""Differential tests of the web half: the same TotoServer app under Toto 1.0.12 and this package.

The HTTP counterpart of ``oracle.py``.  A :class:`WebPair` starts one app twice -- the
same method package, conf file and command line -- as the original 1.0.12 ``TotoServer``
(``$TOTO_ORACLE_PYTHON``: Python 2.7, tornado 4.5.3) and as this package's, each on a free
port of its own, waits until each answers (a probe request, polled against a deadline),
then sends both the same HTTP requests and compares what clients read of the answers::

    import oracle_web
    from oracle_web import Call

    def test_echo(tmp_path):
        with oracle_web.WebPair(str(tmp_path)) as pair:
            pair.start_app('web_app', conf={'hmac_enabled': True})
            pair.compare('get.query', Call('GET', '/echo', query=[('a', '1')]))
            login = pair.compare('accounts.login', Call(json={
                'method': 'account.login', 'parameters': {'user_id': 'al', 'password': 'pw'}}),
                keep='al')
            pair.compare('accounts.whoami', Call(path='/whoami', session='al', sign=True))

What is compared (:func:`answer_aspects`), each part on its own:

``status``
    the HTTP status, or ``'<no answer within N s>'`` for a request left hanging;
``content_type``
    every ``Content-Type`` header, in order (1.0.12 sends two);
``cors``
    the ``Access-Control-*`` headers, the header lists as sets (browsers read them so);
``location``, ``hmac``, ``cookies``
    the redirect target; whether ``x-toto-hmac`` is the HMAC-SHA1 of ``session_id + body``
    under the session key that side handed out (checked on each side with its own key:
    ``'valid'``, ``'invalid'``, ``'no key'``, or None without the header); each
    ``Set-Cookie`` by name with its value (session ids relabelled, Tornado's signed cookies
    opened) and attributes (``expires`` as days from now);
``body``
    JSON bodies parsed, session ids, keys and expiry times masked; JSONP as its callback
    and JSON; Tornado's HTML error pages as their status; anything else as text;
``json_format``, ``key_order``
    whether the body bytes are exactly ``json.dumps`` with its defaults of the parsed
    document in the order sent (so, with ``body`` and ``key_order`` equal, the bytes are
    equal up to the masked values), and the key order of every object in the body.

Ids and keys differ per run: a :class:`Call` names the session it sends by the name an
earlier comparison kept (``keep=``), each side sending its own id, key and cookie.  A
part that differs fails the test unless ``oracle_differences.DIFFERENCES`` lists it:
under the case id (the whole answer), or, for what differs in every answer alike (the
cookies' attributes, key order), under ``'http.<part>'``.  ``WebPair(directory,
against='original')`` runs 1.0.12 against itself and accepts no difference: it shows
the masks hide only what is random.  :func:`suspected_bug` marks a comparison that shows
a defect of this package (reported, not listed) as an expected failure until it is fixed.
"""

from __future__ import print_function

import base64
import calendar
import collections
import email.utils
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
from six.moves.urllib.parse import urlencode

import oracle
from oracle import COMPAT, ORIGINAL, SideFile, conf_text, oracle_python
from support import free_port

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(TESTS_DIR, 'oracle_apps')
RUN_SERVER = os.path.join(APPS_DIR, 'run_server.py')
KWARGS_VARIABLE = 'TOTO_ORACLE_SERVER_KWARGS'

#: How long a server may take to answer its first request.
START_TIMEOUT = 45.0
#: The timeout of each compared request: only a hung side should reach it.
CALL_TIMEOUT = 15.0
PROBE_METHOD = 'oracle_kit_probe'
_SIDE_TITLES = {ORIGINAL: 'Toto 1.0.12', COMPAT: 'this package'}
COOKIE_NAME = 'toto-session-id'
_DAY = 24 * 60 * 60.0


# -- suspected bugs ---------------------------------------------------------------------------

# A defect of this package that a comparison or the browser test shows, reported to
# be fixed (the kit does not change toto/): marked, the test is an
# expected failure; once it is fixed the test fails, saying to remove the marker.
def suspected_bug(reason, strict=False):
    """Turn a failure of the block into an expected one (``reason``), and its success into
    a failure that says the bug is gone.  No-op without a reason or when ``strict`` (1.0.12
    compared with itself has none of this package's bugs)."""
    if reason is None or strict:
        yield
        return
    try:
        yield
    except (AssertionError, KeyError) as error:
        pytest.xfail('suspected bug: %s\n%s' % (reason, str(error).splitlines()[0]))
    pytest.fail('the suspected bug no longer shows: %s\nRemove the suspected_bug() marker.'
                % reason)


# -- HTTP on a plain socket ------------------------------------------------------------------

class Answer(object):
    """One HTTP answer as it came off the wire: status, headers in order, body bytes."""

    def __init__(self, status=None, reason='', headers=(), body=b'', timeout=None):
        self.status = status
        self.reason = reason
        #: ``[(lowercased name, value)]`` in the order sent, duplicates kept.
        self.headers = list(headers)
        self.body = body
        #: The timeout that ran out before any answer (status None), else None.
        self.timeout = timeout

    def header_values(self, name):
        return [value for key, value in self.headers if key == name]

    def header(self, name, default=None):
        values = self.header_values(name)
        return values[-1] if values else default

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        if self.status is None:
            return '<Answer: none within %.1f s>' % self.timeout
        return '<Answer %s %r %r>' % (self.status, self.headers, self.body[:300])


def _read_until_closed(sock, deadline):
    chunks = []
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise socket.timeout('no complete answer in time')
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return b''.join(chunks)
        chunks.append(chunk)


def _dechunk(data):
    body = []
    while True:
        line, _, data = data.partition(b'\r\n')
        size = int(line.split(b';')[0].strip() or b'0', 16)
        if size == 0:
            return b''.join(body)
        body.append(data[:size])
        data = data[size + 2:]


def parse_answer(data):
    """An :class:`Answer` from the bytes of one HTTP/1.1 response."""
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    version, status, reason = (lines[0].split(' ', 2) + [''])[:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers.append((name.strip().lower(), value.strip()))
    if any(name == 'transfer-encoding' and 'chunked' in value.lower()
           for name, value in headers):
        body = _dechunk(body)
    return Answer(int(status), reason, headers, body)


def http_exchange(port, data, timeout=CALL_TIMEOUT, host='127.0.0.1'):
    """Send ``data`` (one whole request, ``Connection: close``) and read the answer.

    No answer within ``timeout`` gives an :class:`Answer` with status None.
    """
    sock = socket.create_connection((host, port), timeout)
    try:
        sock.sendall(data)
        try:
            raw = _read_until_closed(sock, time.time() + timeout)
        except socket.timeout:
            return Answer(timeout=timeout)
    finally:
        sock.close()
    if not raw:
        return Answer(status=0, reason='connection closed without an answer')
    return parse_answer(raw)


# -- requests -------------------------------------------------------------------------------

def _bytes(value):
    if isinstance(value, bytes):
        return value
    return value.encode('utf-8')


def multipart_body(fields=(), files=(), boundary=None):
    """``(content_type, body)`` of a ``multipart/form-data`` body.

    ``fields`` are ``(name, text)``, ``files`` ``(name, filename, content_type, bytes)``.
    """
    boundary = boundary or 'toto-oracle-%s' % uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(b'--' + _bytes(boundary) + b'\r\n'
                     b'Content-Disposition: form-data; name="' + _bytes(name) + b'"\r\n\r\n'
                     + _bytes(value) + b'\r\n')
    for name, filename, content_type, content in files:
        parts.append(b'--' + _bytes(boundary) + b'\r\n'
                     b'Content-Disposition: form-data; name="' + _bytes(name)
                     + b'"; filename="' + _bytes(filename) + b'"\r\n'
                     b'Content-Type: ' + _bytes(content_type) + b'\r\n\r\n'
                     + _bytes(content) + b'\r\n')
    body = b''.join(parts) + b'--' + _bytes(boundary) + b'--\r\n'
    return 'multipart/form-data; boundary=' + boundary, body


def request_hmac(key, verb, uri, body):
    """1.0.12's request HMAC: base64(HMAC-SHA1(key, verb + uri + body))."""
    digest = hmac.new(_bytes(key), _bytes(verb) + _bytes(uri) + _bytes(body or b''),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


def response_hmac(key, session_id, body):
    """1.0.12's response HMAC: base64(HMAC-SHA1(key, session_id + body))."""
    digest = hmac.new(_bytes(key), _bytes(session_id) + _bytes(body), hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


class Call(object):
    """One HTTP request, sent alike to both sides.

    ``path`` is under the app's ``root``; ``query`` a list of pairs.  The body is one of
    ``json`` (a document, sent as ``application/json``), ``form`` (pairs, urlencoded),
    ``fields``/``files`` (multipart) or ``body`` (bytes, with ``content_type`` or none).
    ``session`` names a kept session whose id goes in ``x-toto-session-id``; ``sign``
    adds the request HMAC with its key (``'bad'``: a wrong one); ``cookie`` sends the
    side's session cookie (the last one it set, or the kept session's named one).
    ``headers`` are extra ``(name, value)`` pairs (a value may be a function of the
    side).  ``uri`` replaces the root and path (a request outside the root).
    ``timeout``: how long to wait.
    """

    def __init__(self, verb='POST', path='/', query=None, json=None, form=None, fields=None,
                 files=None, body=None, content_type=None, headers=(), session=None,
                 sign=False, cookie=None, timeout=CALL_TIMEOUT, uri=None):
        self.verb = verb
        self.path = path
        self.absolute_uri = uri
        self.query = query
        self.json = json
        self.form = form
        self.fields = fields
        self.files = files
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)
        self.session = session
        self.sign = sign
        self.cookie = cookie
        self.timeout = timeout

    def __repr__(self):
        parts = [self.verb, self.absolute_uri or self.path]
        for name in ('query', 'json', 'form', 'fields', 'files', 'body', 'content_type',
                     'session', 'sign', 'cookie'):
            value = getattr(self, name)
            if value not in (None, False):
                parts.append('%s=%r' % (name, value))
        if self.headers:
            parts.append('headers=%r' % (self.headers,))
        return 'Call(%s)' % ', '.join(parts)

    def _body(self):
        if self.json is not None:
            return self.content_type or 'application/json', _bytes(json.dumps(self.json))
        if self.form is not None:
            return (self.content_type or 'application/x-www-form-urlencoded',
                    _bytes(urlencode(self.form)))
        if self.fields is not None or self.files is not None:
            return multipart_body(self.fields or (), self.files or ())
        return self.content_type, self.body

    def uri(self, root='/'):
        path = self.absolute_uri or root.rstrip('/') + self.path
        if self.query:
            path += '?' + urlencode(self.query)
        return path

    def encode(self, side):
        """The request's bytes for ``side`` (its port, session id, key and cookie)."""
        uri = self.uri(side.root)
        content_type, body = self._body()
        headers = [('Host', '127.0.0.1:%d' % side.port)]
        if content_type:
            headers.append(('Content-Type', content_type))
        # A session the side did not give out (it failed where the other did not) is
        # sent as none: the answers then differ, and say why.
        session = side.kept.get(self.session) if self.session else None
        if session and session.get('session_id'):
            headers.append(('x-toto-session-id', session['session_id']))
        if self.sign:
            key = (session or {}).get('key') if self.sign is True else 'not the key'
            headers.append(('x-toto-hmac', request_hmac(key or '', self.verb, uri, body)))
        if self.cookie:
            value = side.cookies.get(COOKIE_NAME) if self.cookie is True else (
                side.kept.get(self.cookie, {}).get('cookie'))
            if value:
                headers.append(('Cookie', '%s=%s' % (COOKIE_NAME, value)))
        headers.extend((name, value(side) if callable(value) else value)
                       for name, value in self.headers)
        if body is not None or self.verb in ('POST', 'PUT'):
            headers.append(('Content-Length', str(len(body or b''))))
        headers.append(('Connection', 'close'))
        lines = ['%s %s HTTP/1.1' % (self.verb, uri)]
        lines.extend('%s: %s' % (name, value) for name, value in headers)
        return _bytes('\r\n'.join(lines) + '\r\n\r\n') + (body or b'')


# -- making answers comparable ---------------------------------------------------------------

_SESSION_ID = re.compile(r'^[A-Za-z0-9_-]{22}$')
_TORNADO_PAGE = re.compile(br'^<html><title>(\d+): ([^<]*)</title>')
_JSONP = re.compile(r'^([^(]*)\((.*)\)$', re.DOTALL)
_SIGNED_COOKIE = re.compile(r'^2\|1:\d+\|\d+:\d+\|\d+:[^|]*\|\d+:([A-Za-z0-9+/=]*)\|[0-9a-f]+$')
_CORS_SETS = ('access-control-allow-headers', 'access-control-allow-methods',
              'access-control-expose-headers')


def _labels(side):
    labels = {}
    for name, session in side.kept.items():
        if session.get('session_id'):
            labels[session['session_id']] = '<kept:%s>' % name
        if session.get('key'):
            labels[session['key']] = '<kept:%s.key>' % name
    return labels


def _text(value):
    return isinstance(value, (type(u''), str))


def _days_from_now(moment):
    return '<now + %d days>' % int(round((moment - time.time()) / _DAY))


def mask_json(value, labels):
    """A parsed body with kept ids relabelled and random values replaced by their shape."""
    def walk(item, key=None):
        if isinstance(item, dict):
            return dict((walk(k), walk(v, k)) for k, v in item.items())
        if isinstance(item, list):
            return [walk(sub) for sub in item]
        if _text(item) and item in labels:
            return labels[item]
        if key == 'expires' and isinstance(item, (int, float)) and not isinstance(item, bool):
            return _days_from_now(item)
        if key in ('session_id', 'key') and _text(item) and _SESSION_ID.match(item):
            return '<22-character %s>' % ('session id' if key == 'session_id' else 'key')
        return item
    return walk(value)


def _key_orders(text):
    """``{path: [keys in order]}`` for every JSON object in ``text``."""
    orders = {}

    def walk(item, path):
        if isinstance(item, collections.OrderedDict):
            orders[path or '.'] = list(item.keys())
            for key, sub in item.items():
                walk(sub, path + '.' + key)
        elif isinstance(item, list):
            for index, sub in enumerate(item):
                walk(sub, '%s[%d]' % (path, index))
    document = json.loads(text, object_pairs_hook=collections.OrderedDict)
    walk(document, '')
    return document, orders


def _cookie(text, labels):
    """``(name, {'value': ..., attribute: value})`` of one Set-Cookie header."""
    pairs = [part.strip() for part in text.split(';')]
    name, _, value = pairs[0].partition('=')
    value = value.strip('"')
    signed = _SIGNED_COOKIE.match(value)
    if signed:
        opened = base64.b64decode(signed.group(1)).decode('utf-8')
        value = '<signed: %s>' % labels.get(opened, opened)
    else:
        value = labels.get(value, value)
    described = {'value': value}
    for pair in pairs[1:]:
        if not pair:
            continue
        attribute, _, attribute_value = pair.partition('=')
        attribute = attribute.strip().lower()
        if attribute == 'expires':
            moment = calendar.timegm(email.utils.parsedate(attribute_value))
            attribute_value = _days_from_now(moment)
        elif attribute == 'max-age':
            attribute_value = '<%d days>' % int(round(int(attribute_value) / _DAY))
        described[attribute] = attribute_value if attribute_value else True
    return name, described


def _hmac_state(answer, document, side):
    mac = answer.header('x-toto-hmac')
    if mac is None:
        return None
    session = isinstance(document, dict) and document.get('session') or {}
    session_id = session.get('session_id') if isinstance(session, dict) else None
    key = None
    result = document.get('result') if isinstance(document, dict) else None
    if isinstance(result, dict) and result.get('session_id') == session_id:
        key = result.get('key')
    for kept in side.kept.values():
        if key is None and kept.get('session_id') == session_id:
            key = kept.get('key')
    if not key or not session_id:
        return 'no key'
    return 'valid' if mac == response_hmac(key, session_id, answer.body) else 'invalid'


def answer_aspects(answer, side):
    """What clients read of ``answer``, made comparable across the sides (see the module doc)."""
    if answer.status is None:
        return {'status': '<no answer within %.0f s>' % answer.timeout}
    labels = _labels(side)
    aspects = {'status': answer.status,
               'content_type': answer.header_values('content-type')}
    cors = {}
    for name, value in answer.headers:
        if name.startswith('access-control-'):
            if name in _CORS_SETS:
                value = sorted(part.strip() for part in value.split(',') if part.strip())
            cors[name] = value
    aspects['cors'] = cors
    aspects['location'] = answer.header('location')
    cookies = {}
    for text in answer.header_values('set-cookie'):
        name, described = _cookie(text, labels)
        cookies[name] = described
    aspects['cookies'] = cookies
    document = None
    content_types = ' '.join(aspects['content_type'])
    text = answer.body.decode('latin-1')
    page = _TORNADO_PAGE.match(answer.body)
    if page:
        aspects['body'] = '<tornado %s page>' % page.group(1).decode('ascii')
    elif 'json' in content_types and answer.body:
        try:
            document, orders = _key_orders(answer.body.decode('utf-8'))
        except ValueError:
            aspects['body'] = text
        else:
            aspects['body'] = mask_json(json.loads(answer.body.decode('utf-8')), labels)
            aspects['key_order'] = orders
            redumped = json.dumps(document).encode('utf-8')
            aspects['json_format'] = ('json.dumps defaults' if redumped == answer.body
                                      else 'other')
    elif 'javascript' in content_types and _JSONP.match(text):
        callback, inner = _JSONP.match(text).groups()
        try:
            aspects['body'] = {'jsonp': callback,
                               'json': mask_json(json.loads(inner), labels)}
        except ValueError:
            aspects['body'] = text
    else:
        aspects['body'] = text
    aspects['hmac'] = _hmac_state(answer, document, side)
    return aspects


# -- sides and pairs -------------------------------------------------------------------------

class WebSide(object):
    """One side of a pair: a TotoServer under one package, in a folder of its own.

    ``kept`` maps names to the sessions this side handed out (``session_id``, ``key``,
    ``cookie``); ``cookies`` holds the last value of each cookie it set.
    """

    def __init__(self, role, python, env, directory):
        self.role = role
        self.title = _SIDE_TITLES.get(role, role)
        self.python = python
        self.env = env
        self.directory = directory
        self.kept = {}
        self.cookies = {}
        self.process = None
        self.port = None
        self.root = '/'
        self.probe = True
        self._starts = 0
        if not os.path.isdir(directory):
            os.makedirs(directory)

    def __repr__(self):
        return '<WebSide %s on %s>' % (self.title, self.port)

    def path(self, name):
        return os.path.join(self.directory, name)

    def read(self, name):
        with open(self.path(name)) as stream:
            return stream.read()

    def describe(self):
        if self.process is None:
            return '--- %s: not started' % self.title
        return '--- %s: %s' % (self.title, self.process.describe())

    def start(self, argv, port, root='/', probe=True, cwd=None, kwargs=None):
        """Start ``argv`` (after the interpreter) serving on ``port``; do not wait."""
        self.end()
        self.kept.clear()
        self.cookies.clear()
        self._starts += 1
        self.port = port
        self.root = root
        self.probe = probe
        env = dict(self.env)
        env.pop(KWARGS_VARIABLE, None)
        if kwargs:
            env[KWARGS_VARIABLE] = json.dumps(kwargs)
        name = 'server-%d' % self._starts
        self.process = oracle.Process('%s %s' % (self.title, name), [self.python] + argv, env,
                                      self.path(name + '.log'), cwd or self.directory)
        return self

    def start_app(self, app, conf, args=(), kwargs=None):
        """``run_server.py`` with a conf file of ``conf`` (a dict) and ``args``."""
        options = dict((key, value.write(self) if isinstance(value, SideFile) else value)
                       for key, value in conf.items())
        conf_path = self.path('server-%d.conf' % (self._starts + 1))
        with open(conf_path, 'w') as stream:
            stream.write(conf_text(options))
        return self.start([RUN_SERVER, conf_path] + list(args), conf['port'],
                          conf.get('root', '/'), probe=True, kwargs=kwargs)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Request the probe until this side's server answers it (any answer for apps
        without one: a template), failing with the log if the server exits or never does."""
        deadline = time.time() + timeout
        # Named in the path and in the body: answered whatever method_select says.
        probe = Call(path='/' + PROBE_METHOD, json={'method': PROBE_METHOD}, timeout=5.0)
        while True:
            try:
                answer = http_exchange(self.port, probe.encode(self), 5.0)
            except socket.error:
                answer = None
            if answer is not None and answer.status and self._answered_by_this_side(answer):
                return answer
            if not self.process.is_running():
                raise AssertionError('%s exited before it answered\n%s'
                                     % (self.title, self.describe()))
            if time.time() > deadline:
                raise AssertionError('%s answered nothing within %.0f s\n%s'
                                     % (self.title, timeout, self.describe()))
            time.sleep(0.05)

    def _answered_by_this_side(self, answer):
        if not self.probe:
            return True
        try:
            return answer.json()['result']['process_group'] == self.process.pid
        except (ValueError, KeyError, TypeError):
            return False

    def send(self, call):
        """Send ``call``; remember the cookies the answer sets."""
        answer = http_exchange(self.port, call.encode(self), call.timeout)
        for text in answer.header_values('set-cookie'):
            name, _, value = text.split(';')[0].partition('=')
            self.cookies[name.strip()] = value.strip().strip('"')
        return answer

    def keep(self, name, answer):
        """Keep the session ``answer`` gave out (a login's result, or its session object)."""
        kept = {'cookie': self.cookies.get(COOKIE_NAME)}
        try:
            document = answer.json()
        except ValueError:
            document = {}
        result = document.get('result') if isinstance(document, dict) else None
        if isinstance(result, dict) and result.get('session_id'):
            kept.update(session_id=result['session_id'], key=result.get('key'))
        elif isinstance(document, dict) and isinstance(document.get('session'), dict):
            kept.update(session_id=document['session']['session_id'], key=None)
        self.kept[name] = kept
        return kept

    def end(self):
        if self.process is not None:
            self.process.end(signal.SIGKILL)


class WebComparison(object):
    """What the two sides answered to one request, raw and made comparable."""

    def __init__(self, case, call, answers, aspects):
        self.case = case
        self.call = call
        #: ``{role: Answer}``.
        self.answers = answers
        #: ``{role: {part: value}}`` (see :func:`answer_aspects`).
        self.aspects = aspects
        #: The accepted differences: ``[Difference]`` (empty when the answers agree).
        self.differences = []

    @property
    def original(self):
        return self.aspects[ORIGINAL]

    @property
    def other(self):
        return [value for role, value in self.aspects.items() if role != ORIGINAL][0]

    def __repr__(self):
        return '<WebComparison %s: %r>' % (self.case, self.aspects)


def check(comparison, strict=False):
    """Pass if both sides' answers agree, or differ only as the list accepts.

    Parts that differ in every answer alike are accepted by their ``'http.<part>'``
    entry; what remains must be accepted by the case's own entry.
    """
    from oracle_differences import DIFFERENCES
    original, other = comparison.original, comparison.other
    if original == other:
        return comparison
    what = ('case %r: %r\n  Toto 1.0.12 answered:      %r\n  the other side answered: %r'
            % (comparison.case, comparison.call, original, other))
    if strict:
        raise AssertionError('the oracle differs from itself (a mask is missing?) in ' + what)
    remaining = dict(other)
    for part in sorted(set(original) | set(other)):
        if original.get(part) == other.get(part):
            continue
        entry = DIFFERENCES.get('http.' + part)
        if entry is not None and entry.accepts(original.get(part), other.get(part)):
            comparison.differences.append(entry)
            remaining[part] = original.get(part)
            if part not in original:
                del remaining[part]
    if remaining == original:
        return comparison
    entry = DIFFERENCES.get(comparison.case)
    if entry is None:
        raise AssertionError(
            'unlisted difference from Toto 1.0.12 in %s\nIf it is intended, list it under %r '
            'in tests/oracle_differences.py with its reason.' % (what, comparison.case))
    if not entry.accepts(original, remaining):
        raise AssertionError('the difference listed for %r (%s) does not accept %s'
                             % (comparison.case, entry.reason, what))
    comparison.differences.append(entry)
    return comparison


def free_ports(count):
    """``count`` consecutive free loopback ports (1.0.12's event ports are port + i)."""
    for _ in range(200):
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(('127.0.0.1', port))
            return first
        except socket.error:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError('no %d consecutive free ports' % count)


def _distinct_ports(count, per_side=1):
    ports = []
    while len(ports) < count:
        port = free_ports(per_side)
        if all(abs(port - other) >= per_side for other in ports):
            ports.append(port)
    return ports


class WebPair(object):
    """The original 1.0.12 TotoServer and ``against`` serving the same app side by side."""

    def __init__(self, directory, against=COMPAT):
        if against not in (COMPAT, ORIGINAL):
            raise ValueError('against must be %r or %r' % (COMPAT, ORIGINAL))
        python = oracle_python()
        self.directory = directory
        self.strict = against == ORIGINAL
        self.original = WebSide(ORIGINAL, python, oracle._oracle_env(),
                                os.path.join(directory, 'original'))
        if self.strict:
            self.other = WebSide('original-again', python, oracle._oracle_env(),
                                 os.path.join(directory, 'original-again'))
            self.other.title = 'Toto 1.0.12 (again)'
        else:
            self.other = WebSide(COMPAT, sys.executable, oracle._compat_env(),
                                 os.path.join(directory, 'compat'))
        self.sides = (self.original, self.other)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def logs(self):
        return '\n'.join(side.describe() for side in self.sides)

    def start_app(self, app, conf=None, args=(), processes=1, kwargs=None):
        """Serve the method package ``app`` on both sides; return once each answers.

        ``conf`` is each side's conf file (``method_module``, ``port`` and ``processes``
        are set here; a :class:`oracle.SideFile` value is a file of each side's own);
        ``args`` go on the command line.
        """
        for side, port in zip(self.sides, _distinct_ports(len(self.sides))):
            options = {'method_module': app, 'processes': processes, 'port': port}
            options.update(conf or {})
            side.start_app(app, options, args, kwargs)
        for side in self.sides:
            side.wait_ready()
        return self

    def start_template(self, template, args=(), processes=1, events=False):
        """Make ``template`` with each side's ``toto-create`` and start its server.

        Each side serves its own package's template (1.0.12's uses Python 2 implicit
        relative imports), with the json database in a file of its own and ``args``
        on the command line after the template's own conf file.
        """
        per_side = processes if events else 1
        ports = _distinct_ports(2 * len(self.sides), per_side)
        for index, side in enumerate(self.sides):
            target = side.path('template-%s' % template)
            if os.path.exists(target):
                shutil.rmtree(target)
            _toto_create(side, target, template)
            db = SideFile('template-db.json', '{}').write(side)
            port = ports[2 * index]
            argv = [os.path.join(target, 'totoserver.py'), '--port=%d' % port,
                    '--processes=%d' % processes, '--nodaemon', '--database=json',
                    '--db_host=' + db, '--db_port=1', '--bson_enabled=False',
                    '--pidfile=' + side.path('template.pid')]
            if events:
                argv.append('--event_port=%d' % ports[2 * index + 1])
            side.start(argv + list(args), port, probe=False, cwd=target)
        for side in self.sides:
            side.wait_ready()
        return self

    def send(self, call, keep=None):
        """Send ``call`` to each side; ``{role: Answer}``.  ``keep``: see :meth:`compare`."""
        answers = {}
        for side in self.sides:
            answers[side.role] = answer = side.send(call)
            if keep:
                side.keep(keep, answer)
        return answers

    def compare(self, case, call, keep=None):
        """Send ``call`` to both sides and check the answers; return the comparison.

        ``keep`` names the session the answer gives out (a login or create result, or
        the session of an anonymous one), for later calls' ``session=``/``cookie=``.
        """
        answers = self.send(call, keep)
        aspects = dict((side.role, answer_aspects(answers[side.role], side))
                       for side in self.sides)
        return check(WebComparison(case, call, answers, aspects), self.strict)

    def close(self):
        errors = []
        for side in self.sides:
            try:
                side.end()
            except Exception as error:  # keep ending the rest
                errors.append(error)
        if errors:
            raise errors[0]


def _toto_create(side, target, template):
    """Run the side's ``toto-create``: 1.0.12's script beside its interpreter, or ours."""
    if side.role == COMPAT:
        argv = [side.python, '-c', 'import sys; from toto._create import main; '
                'sys.argv[0] = "toto-create"; sys.exit(main())', target, template]
    else:
        argv = [side.python, os.path.join(os.path.dirname(side.python), 'toto-create'),
                target, template]
    process = subprocess.Popen(argv, env=side.env, cwd=side.directory,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.communicate()[0]
    if process.returncode != 0 or not os.path.isdir(target):
        raise AssertionError('%s: toto-create %s failed (%s):\n%s'
                             % (side.title, template, process.returncode,
                                output.decode('utf-8', 'replace')))
