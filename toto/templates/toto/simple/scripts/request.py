"""Calls the server as a Toto client does; the other scripts use toto_request().

The server is at $TOTO_URL (default http://localhost:8888/). With a session that has a "key"
(account.login returns one when the server runs with hmac_enabled), each request carries
x-toto-hmac = base64(HMAC-SHA1(key, "POST" + request path + body)), and the signature of
each answer, base64(HMAC-SHA1(key, session_id + body)), is checked.
"""

from __future__ import print_function

import base64
import hashlib
import hmac
import json
import os

try:
    from urllib.parse import urlsplit
    from urllib.request import Request, urlopen
except ImportError:  # Python 2
    from urllib2 import Request, urlopen
    from urlparse import urlsplit

SERVER_URL = os.environ.get('TOTO_URL', 'http://localhost:8888/')
SESSION_FILE = 'session.conf'


def _bytes(text):
    return text if isinstance(text, bytes) else text.encode('utf-8')


def _signature(key, message):
    """base64(HMAC-SHA1(key, message)) as a native string (a header value)."""
    encoded = base64.b64encode(hmac.new(_bytes(key), message, hashlib.sha1).digest())
    return encoded if isinstance(encoded, str) else encoded.decode('ascii')


def _request_path(url):
    parts = urlsplit(url)
    return (parts.path or '/') + ('?' + parts.query if parts.query else '')


def toto_request(method, params=None, session=None):
    """POST {"method": method, "parameters": params}; returns the decoded answer."""
    session = session or {}
    body = json.dumps({'method': method, 'parameters': params or {}}).encode('utf-8')
    headers = {'content-type': 'application/json'}
    if session.get('session_id'):
        headers['x-toto-session-id'] = session['session_id']
        if session.get('key'):
            signed = b'POST' + _bytes(_request_path(SERVER_URL)) + body
            headers['x-toto-hmac'] = _signature(session['key'], signed)
    response = urlopen(Request(SERVER_URL, body, headers), timeout=60)
    text = response.read()
    answer = json.loads(text.decode('utf-8'))
    _check_signature(answer, text, response.info().get('x-toto-hmac'), session)
    return answer


def _check_signature(answer, text, signature, session):
    # The key is the session's, or the one a login answer just handed out.
    result = answer.get('result')
    key = session.get('key') or (isinstance(result, dict) and result.get('key'))
    session_id = (answer.get('session') or {}).get('session_id')
    if not (key and session_id):
        return
    expected = _signature(key, _bytes(session_id) + text)
    if not signature or not hmac.compare_digest(_bytes(expected), _bytes(signature)):
        raise ValueError('the answer is not signed with the session key')


def save_session(answer, path=SESSION_FILE):
    """Keep the session of a create or login answer in session.conf."""
    result = answer.get('result')
    if not isinstance(result, dict) or 'session_id' not in result:
        return
    with open(path, 'w') as session_file:
        for name in ('session_id', 'user_id', 'key'):
            if result.get(name):
                session_file.write('%s=%r\n' % (name, str(result[name])))


def load_session(path=SESSION_FILE):
    """The session that save_session() kept."""
    session = {}
    with open(path) as session_file:
        exec(session_file.read(), session)
    return dict((name, session[name]) for name in ('session_id', 'user_id', 'key')
                if name in session)
