"""Every difference from Toto 1.0.12 that the differential tests accept, and why.

The differential tests (``tests/oracle.py``) send the same calls to an app running under
the original Toto 1.0.12 and under this package.  Where the answers (or the stored data)
differ, the test fails -- unless :data:`DIFFERENCES` lists the case here.  Each entry says
what the call is, what 1.0.12 answered, what this package answers, why, and has a check
(``accepts``) that admits exactly the listed shape of answer, so a listed case that starts
to answer something else fails again.  A case whose answers turn out equal needs no entry
(some differ only on Python 3, where Python words an exception's message differently).

docs/migration.rst cites this file; render the list for the docs with::

    python tests/oracle_differences.py > differences.rst

Adding an entry::

    DIFFERENCES['case.id'] = Difference(
        call='``method``(parameters)',
        original='what 1.0.12 answered',
        now='what this package answers',
        reason='why the difference is wanted',
        accepts=lambda original, now: ...)   # both answers as oracle.canonical() gives them
"""

from __future__ import print_function

import re


class Difference(object):
    """One accepted difference: the call, both answers in words, the reason, the check."""

    def __init__(self, call, original, now, reason, accepts):
        self.call = call
        self.original = original
        self.now = now
        self.reason = reason
        self._accepts = accepts

    def accepts(self, original, now):
        """True if the two (canonical) answers differ the way this entry says."""
        return bool(self._accepts(original, now))

    def __repr__(self):
        return '<Difference %s: %s>' % (self.call, self.reason)


# -- checks ----------------------------------------------------------------------------------

def _error(answer):
    """``(code, value)`` of an ``{'error': {'code', 'value'}}`` answer, else None."""
    if isinstance(answer, dict) and isinstance(answer.get('error'), dict):
        error = answer['error']
        return error.get('code'), error.get('value')
    return None


_MISSING_ATTRIBUTE = re.compile(r"has no attribute '([^']*)'$")


def _same_missing_attribute(original, now):
    """Both code 1000, each the AttributeError text for the same attribute.

    Python 2 says ``'module' object has no attribute 'x'``, Python 3 ``module 'app.a'
    has no attribute 'x'``.
    """
    old, new = _error(original), _error(now)
    if not old or not new or old[0] != 1000 or new[0] != 1000:
        return False
    old_name, new_name = _MISSING_ATTRIBUTE.search(old[1]), _MISSING_ATTRIBUTE.search(new[1])
    return bool(old_name and new_name and old_name.group(1) == new_name.group(1))


def _refused_name(original, now):
    """Both code 1000; this package refuses the name before any lookup."""
    old, new = _error(original), _error(now)
    return (old and new and old[0] == new[0] == 1000
            and ('is not a method name' in new[1] or 'is not a method of' in new[1]
                 or _MISSING_ATTRIBUTE.search(new[1]) is not None))


def _same_names_any_order(prefix):
    def check(original, now):
        old, new = _error(original), _error(now)
        if not old or not new or old[0] != new[0]:
            return False
        if not (old[1].startswith(prefix) and new[1].startswith(prefix)):
            return False
        names = lambda value: sorted(value[len(prefix):].split(', '))  # noqa: E731
        return names(old[1]) == names(new[1])
    return check


_NEW_HASH = re.compile(r'^\$p5k2\$[1-9a-f][0-9a-f]*\$[A-Za-z0-9./]{16}\$[A-Za-z0-9./]{32}$')


def _new_hashes_masked(value):
    if isinstance(value, dict):
        return dict((key, _new_hashes_masked(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_new_hashes_masked(item) for item in value]
    if isinstance(value, (type(u''), str)) and _NEW_HASH.match(value):
        return '<pbkdf2 $p5k2$ hash>'
    return value


def _same_but_stronger_hashes(original, now):
    """Equal once this package's password hashes (more iterations, longer salt) are masked."""
    return original != now and _new_hashes_masked(now) == original


def _answers(expected):
    return lambda original, now: now == expected


# -- the list --------------------------------------------------------------------------------

_ATTRIBUTE_TEXT = (
    "The value is the text of Python's own AttributeError, which Python 3 words "
    "differently; the code (1000) is the same, and on Python 2.7 so is the text.")
_LOOKUP_LIMITS = (
    'A call resolves only to method modules inside the method package, and private '
    'names are refused before any lookup: 1.0.12 followed any attribute chain, so a '
    'caller could reach modules a method module imported (and run an ``invoke`` found '
    'there) or private attributes (see the security page).')

#: Accepted differences by case id (the ``case`` argument of ``Pair.compare``).
DIFFERENCES = {
    'methods.missing': Difference(
        call='``nope`` (no such method)',
        original="``{'code': 1000, 'value': \"'module' object has no attribute 'nope'\"}``",
        now="on Python 3: ``{'code': 1000, 'value': \"module 'app' has no attribute "
            "'nope'\"}``",
        reason=_ATTRIBUTE_TEXT,
        accepts=_same_missing_attribute),
    'methods.missing_nested': Difference(
        call='``a.nope`` (no such method in an existing package)',
        original="``{'code': 1000, 'value': \"'module' object has no attribute 'nope'\"}``",
        now="on Python 3: ``{'code': 1000, 'value': \"module 'app.a' has no attribute "
            "'nope'\"}``",
        reason=_ATTRIBUTE_TEXT,
        accepts=_same_missing_attribute),
    'methods.package_without_invoke': Difference(
        call='``a`` (a package of methods that has no ``invoke`` itself)',
        original="``{'code': 1000, 'value': \"'module' object has no attribute "
                 "'invoke'\"}``",
        now="on Python 3: ``{'code': 1000, 'value': \"module 'app.a' has no attribute "
            "'invoke'\"}``",
        reason=_ATTRIBUTE_TEXT,
        accepts=_same_missing_attribute),
    'methods.private_name': Difference(
        call='``_private``',
        original="``{'code': 1000, 'value': \"'module' object has no attribute "
                 "'_private'\"}`` (the attribute was looked up)",
        now="``{'code': 1000, 'value': \"'_private' is not a method name\"}``",
        reason=_LOOKUP_LIMITS,
        accepts=_refused_name),
    'methods.through_an_imported_module': Difference(
        call='``echo.json`` (the ``json`` module that ``echo`` imported)',
        original="``{'code': 1000, 'value': \"'module' object has no attribute "
                 "'invoke'\"}``: it reached the json module",
        now='code 1000, the name does not resolve',
        reason=_LOOKUP_LIMITS,
        accepts=_refused_name),
    'methods.function_attribute': Difference(
        call='``a.b.invoke`` (an attribute of a method module)',
        original="``{'code': 1000, 'value': \"'function' object has no attribute "
                 "'invoke'\"}``",
        now="``{'code': 1000, 'value': \"'a.b.invoke' is not a method of app\"}``",
        reason=_LOOKUP_LIMITS,
        accepts=_refused_name),
    'options.defined_by_the_startup_module': Difference(
        call='``startup_info`` with ``--startup_function`` on the command line and the '
             'startup module\'s options set in the conf file',
        original="the startup module's defaults (``'hello from the startup default'``, 1): "
                 "1.0.12 imports a startup module named on the command line only after it "
                 "has read the conf file, whose values for its options are then ignored",
        now="the conf file's values (``'hello from the conf file to startup'``, 3)",
        reason='Every module an option names is imported before the options are read in '
               'full, wherever it is named, so the options it defines are honoured from '
               'the conf file and the command line (the issue 20 fix of the pre-pass, '
               'which also dropped the first module option of the command line).',
        accepts=_answers({'startup_greeting': 'hello from the conf file to startup',
                          'startup_count': 3, 'db_connection_is_the_workers': True})),
    'accounts.stored_json': Difference(
        call='the json file a worker wrote for ``accounts.create`` and a session',
        original="the account's password as ``$p5k2$$<8-character salt>$<hash>`` "
                 "(400 iterations, 48 characters)",
        now="``$p5k2$186a0$<16-character salt>$<hash>`` (100,000 iterations, 61 "
            "characters); every other stored value has the same shape",
        reason='New password hashes cost 250 times more, in the same pbkdf2 format, '
               'which 1.0.12 verifies (tests/test_db_oracle.py logs in with them there); '
               '``--password_hash_legacy`` writes the 1.0.12 form.',
        accepts=_same_but_stronger_hashes),
    'tasks.yield_task_coroutine': Difference(
        call='``task_coroutine`` (a ``@coroutine`` method yielding '
             '``TaskQueue.yield_task``), ``n=7``',
        original="the pickled Future object the coroutine returned, which a client "
                 "cannot use (a Python 3 client fails to unpickle it); the 1.0.12 worker "
                 "runs no IOLoop, so the coroutine never finishes",
        now="``{'square': 49}``: the worker awaits the coroutine and answers its value",
        reason='Coroutine methods are what the original supported in TotoServer; the '
               'worker now runs them too instead of answering an unusable object.',
        accepts=_answers({'square': 49})),
    'accounts.change_password': Difference(
        call='``accounts.change_password`` with ``--database=json``',
        original="``{'code': 1000, 'value': '_update_password() takes exactly 3 arguments "
                 "(4 given)'}``: the json driver's ``_update_password`` takes one argument "
                 "too few",
        now="``{'changed': True}``: the password is changed",
        reason='A crash of the json driver, fixed.',
        accepts=_answers({'changed': True})),
}



# -- the web half (tests/test_oracle_web.py) -------------------------------------------------
#
# The web kit (tests/oracle_web.py) compares answers part by part: ``status``, ``body``,
# ``content_type``, ``cors``, ``cookies``, ``hmac``, ``location``, ``json_format``,
# ``key_order``.  ``'http.<part>'`` entries accept a part that differs in every answer
# alike; the others are case ids and see the whole answer (with the parts accepted by an
# ``'http.<part>'`` entry already set to 1.0.12's).

_TWO_TYPES = 'text/html; charset=UTF-8'
_CORS = {'access-control-allow-origin': '*', 'access-control-expose-headers': ['x-toto-hmac']}
_DAYS = re.compile(r'^<now \+ (-?\d+) days>$')


def _same_keys_in_another_order(original, now):
    """The same objects with the same keys: only their order differs."""
    return (isinstance(original, dict) and isinstance(now, dict) and set(original) == set(now)
            and all(sorted(original[path]) == sorted(now[path]) for path in original))


def _cookie_days(value):
    match = _DAYS.match(value or '')
    return int(match.group(1)) if match else None


def _cookies_with_real_expiry(original, now):
    """The same cookies and values; this package's expire within a year (or when the
    session does), and may be HttpOnly; 1.0.12's expiry was some 58 years ahead."""
    if not isinstance(original, dict) or not isinstance(now, dict) or set(original) != set(now):
        return False
    for name in original:
        old, new = dict(original[name]), dict(now[name])
        if new.pop('httponly', True) is not True:
            return False
        old_days, new_days = _cookie_days(old.pop('expires', None)), _cookie_days(
            new.pop('expires', None))
        if old != new or old_days is None or new_days is None:
            return False
        if not (old_days > 20000 and 0 <= new_days <= 400):
            return False
    return True


def _tornado_500(answer):
    return answer.get('status') == 500 and answer.get('body') == '<tornado 500 page>'


def _web_answer(original_check, **expected):
    """Accepts when 1.0.12's answer passes ``original_check`` and this package's has
    exactly the ``expected`` parts (``content_type``: the real type after text/html; a
    function: a check of the part)."""
    if 'content_type' in expected:
        expected['content_type'] = [_TWO_TYPES, expected['content_type']]

    def check(original, now):
        return bool(original_check(original)) and all(
            value(now.get(part)) if callable(value) else now.get(part) == value
            for part, value in expected.items())
    return _safe(check)


def _safe(check):
    """``check``, False where the answers lack what it looks at (a shape it did not expect)."""
    def safe_check(original, now):
        try:
            return check(original, now)
        except (KeyError, TypeError, IndexError, AttributeError):
            return False
    return safe_check


def _json_error(code, value, status=200, **parts):
    """``_web_answer`` expectations of a Toto error answer."""
    return dict(status=status, content_type='application/json', cors=_CORS,
                json_format='json.dumps defaults',
                body={'error': {'code': code, 'value': value}}, **parts)


def _body(expected):
    return lambda answer: answer.get('body') == expected


_TORNADO_4_DOUBLE_FINISH = (
    '1.0.12 completes the request\'s internal future twice for ``@raw_response`` and for '
    '``@jsonp`` with a callback.  Tornado 4.5.3 (the oracle\'s stack) turns that into a '
    '500; Tornado 5.1, which ``pip install toto==1.0.12`` picks on Python 2.7, sends the '
    'answer, and so does this package on every Tornado.')
_NO_HTML_500 = (
    'A request 1.0.12 could not read got Tornado\'s HTML 500 page; this package answers '
    'the Toto error shape (code 1000, the reason in ``value``) with status 400, which '
    'clients can read, and logs no traceback.')
_WEB_LOOKUP_LIMITS = (
    'Method names resolve only to method modules of the method package (the workers\' '
    'rule, ``toto._methods.find_method``): 1.0.12 followed any attribute chain, so a URL '
    'reached modules the methods imported, dunder attributes and functions.  Refused '
    'names answer 1001 ``Cannot call`` as unknown methods always did.')
_CROSS_SITE = (
    'With ``use_cookies``, a session that came in the cookie is refused (403, code 1004) '
    'when another site sent the request -- ``Origin`` or ``Sec-Fetch-Site`` shows it: '
    'any web page could make a signed-in user\'s browser call methods with a form, as '
    'tests/test_browser.py shows in Chromium.  Header-carried sessions are not '
    'affected; ``--allow_cross_site_cookies`` restores 1.0.12\'s behaviour.')
_CROSS_SITE_REFUSED = _json_error(
    1004, 'Cross-site request refused: a session cookie is only accepted from this site',
    status=403, cookies={})

DIFFERENCES.update({
    'http.key_order': Difference(
        call='every JSON answer',
        original='keys in Python 2.7\'s dict order (``{"session": ..., "result": ...}``, '
                 'session ``expires, user_id, session_id``)',
        now='on Python 3, in the order the answer was built (``result``/``error`` and '
            'parameters in the order they came); on Python 2.7, as 1.0.12',
        reason='Python 3 dicts keep insertion order.  JSON objects are unordered, and the '
               'response HMAC covers the bytes as sent, so clients that check it are not '
               'affected; the separators and escapes are ``json.dumps``\'s defaults as '
               'before (the kit checks every answer\'s bytes for that).',
        accepts=_same_keys_in_another_order),
    'http.cookies': Difference(
        call='every answer that sets the session cookie (``use_cookies``)',
        original='``toto-session-id=<signed id>; expires=<about 58 years ahead>; Path=/`` '
                 '(the absolute expiry was read as a number of days)',
        now='the same value, expiring with the session (365 days by default), and '
            '``HttpOnly``',
        reason='The cookie lives as long as the session it carries.  HttpOnly keeps the '
               'session id out of reach of page scripts (an XSS cannot read it); '
               '``--cookie_httponly=false`` drops it.',
        accepts=_cookies_with_real_expiry),
    'raw_response.bytes': Difference(
        call='``raw`` (``@raw_response`` returning bytes)',
        original='HTTP 500, Tornado\'s HTML page (on Tornado 4.5.3)',
        now='200, the bytes as ``application/octet-stream``',
        reason=_TORNADO_4_DOUBLE_FINISH,
        accepts=_web_answer(_tornado_500, status=200, body='raw \x00\x01 bytes',
                            content_type='application/octet-stream', cors=_CORS)),
    'raw_response.own_content_type': Difference(
        call='``GET /raw_text?name=al`` (``@raw_response`` setting ``response_type``)',
        original='HTTP 500, Tornado\'s HTML page (on Tornado 4.5.3)',
        now='200, ``plain text for al`` as ``text/plain; charset=utf-8``',
        reason=_TORNADO_4_DOUBLE_FINISH,
        accepts=_web_answer(_tornado_500, status=200, body='plain text for al',
                            content_type='text/plain; charset=utf-8', cors=_CORS)),
    'jsonp.with_callback': Difference(
        call='``GET /jsonp_echo?jsonp=cb&x=1``',
        original='HTTP 500, Tornado\'s HTML page (on Tornado 4.5.3)',
        now='200, ``cb({"x": "1"})`` as ``text/javascript``',
        reason=_TORNADO_4_DOUBLE_FINISH,
        accepts=_web_answer(_tornado_500, status=200, content_type='text/javascript',
                            body={'jsonp': 'cb', 'json': {'x': '1'}}, cors=_CORS)),
    'jsonp.named_callback': Difference(
        call='``GET /jsonp_named?callback=cb`` (``@jsonp(\'callback\')``)',
        original='HTTP 500, Tornado\'s HTML page (on Tornado 4.5.3)',
        now='200, ``cb({"answer": 42})`` as ``text/javascript``',
        reason=_TORNADO_4_DOUBLE_FINISH,
        accepts=_web_answer(_tornado_500, status=200, content_type='text/javascript',
                            body={'jsonp': 'cb', 'json': {'answer': 42}}, cors=_CORS)),
    'jsonp.dotted_callback': Difference(
        call='``GET /jsonp_echo?jsonp=app.cb``',
        original='HTTP 500, Tornado\'s HTML page (on Tornado 4.5.3)',
        now='200, ``app.cb({})`` as ``text/javascript``',
        reason=_TORNADO_4_DOUBLE_FINISH + '  A dotted path is a valid callback.',
        accepts=_web_answer(_tornado_500, status=200, content_type='text/javascript',
                            body={'jsonp': 'app.cb', 'json': {}}, cors=_CORS)),
    'jsonp.script_as_callback': Difference(
        call='``GET /jsonp_echo?jsonp=alert(document.cookie);cb``',
        original='HTTP 500 on Tornado 4.5.3; on Tornado 5.1 the text is sent as the start '
                 'of the script: ``alert(document.cookie);cb({})``',
        now="400, ``{'code': 1000, 'value': 'Invalid JSONP callback: a JavaScript name is "
            "expected'}``",
        reason='JSONP callbacks are checked (a JavaScript name or dotted path): 1.0.12 let '
               'a link run any script with the service\'s data, on the page that includes '
               'it.',
        accepts=_web_answer(_tornado_500, **_json_error(
            1000, 'Invalid JSONP callback: a JavaScript name is expected', status=400))),
    'verbs.head_asynchronous': Difference(
        call='``HEAD /later`` (an ``@asynchronous`` method)',
        original='200 at once, before the method answered, with only the CORS headers '
                 '(one Content-Type, text/html)',
        now='200 once the method answered, with the headers of the GET (both Content-Types) '
            'and no body',
        reason='1.0.12\'s ``head()`` did not wait for ``get()``; a HEAD now says what the '
               'GET would.',
        accepts=_web_answer(_body(''), status=200, body='', cors=_CORS,
                            content_type='application/json')),
    'verbs.head_coroutine': Difference(
        call='``HEAD /coro`` (a coroutine method)',
        original='200 at once, with only the CORS headers (one Content-Type, text/html)',
        now='200 once the coroutine finished, with the headers of the GET and no body',
        reason='1.0.12\'s ``head()`` did not wait for ``get()``; a HEAD now says what the '
               'GET would.',
        accepts=_web_answer(_body(''), status=200, body='', cors=_CORS,
                            content_type='application/json')),
    'batch.empty': Difference(
        call='``{"batch": {}}``',
        original='no answer: the request hangs until the client gives up',
        now='``{"batch": {}}`` at once',
        reason='1.0.12 answered a batch once as many results as keys were in, which for '
               'no keys never happened.',
        accepts=_web_answer(lambda answer: 'no answer' in str(answer.get('status')),
                            status=200, body={'batch': {}}, cors=_CORS,
                            content_type='application/json')),
    'options.requested_headers': Difference(
        call='``OPTIONS /echo`` asking for ``Content-Type, X-Toto-Session-Id, X-Custom``',
        original='``Access-Control-Allow-Headers`` lists every header asked for '
                 '(``x-custom`` too) besides Toto\'s four',
        now='Toto\'s four (``origin, x-toto-session-id, x-toto-hmac, content-type``) and '
            'those named by ``--cors_allow_headers``',
        reason='A preflight no longer allows whatever it asks for; '
               '``--cors_allow_headers=*`` restores 1.0.12\'s echo.',
        accepts=_safe(lambda original, now: (
            now.get('cors', {}).get('access-control-allow-headers') == [
                'content-type', 'origin', 'x-toto-hmac', 'x-toto-session-id']
            and dict(now['cors'], **{'access-control-allow-headers': None}) == dict(
                original['cors'], **{'access-control-allow-headers': None})))),
    'hostile.invalid_json': Difference(
        call='a body of ``{"x": `` as ``application/json``',
        original='HTTP 500, Tornado\'s HTML page',
        now="400, ``{'code': 1000, 'value': 'The request body is not valid JSON: ...'}``",
        reason=_NO_HTML_500,
        accepts=_web_answer(_tornado_500, status=400, cors=_CORS, content_type=(
            'application/json'), body=lambda body: body['error']['code'] == 1000 and body[
                'error']['value'].startswith('The request body is not valid JSON: '))),
    'hostile.invalid_utf_encoding': Difference(
        call='a JSON body with bytes that are not UTF-8',
        original='HTTP 500, Tornado\'s HTML page',
        now="400, ``{'code': 1000, 'value': 'The request body is not UTF-8 text'}``",
        reason=_NO_HTML_500,
        accepts=_web_answer(_tornado_500, **_json_error(
            1000, 'The request body is not UTF-8 text', status=400))),
    'hostile.deep_nesting': Difference(
        call='a JSON body of 100,000 nested lists',
        original='HTTP 500, Tornado\'s HTML page (a RecursionError)',
        now="400, ``{'code': 1000, 'value': 'The request body is nested too deeply'}``",
        reason=_NO_HTML_500,
        accepts=_web_answer(_tornado_500, **_json_error(
            1000, 'The request body is nested too deeply', status=400))),
    'hostile.batch_not_an_object': Difference(
        call='``{"batch": [1, 2]}``',
        original='HTTP 500, Tornado\'s HTML page',
        now="400, ``{'code': 1000, 'value': '\"batch\" must be an object of method calls'}``",
        reason=_NO_HTML_500,
        accepts=_web_answer(_tornado_500, **_json_error(
            1000, '"batch" must be an object of method calls', status=400))),
    'hostile.empty_json_body': Difference(
        call='``POST /echo`` with an empty ``application/json`` body',
        original='HTTP 500, Tornado\'s HTML page (``json.loads(\'\')``)',
        now='200, ``{"result": {}}``: an empty body is no parameters, as with no '
            'Content-Type or a GET',
        reason='A POST without a body (what many clients send for a call without '
               'parameters) is a call without parameters.',
        accepts=_web_answer(_tornado_500, status=200, body={'result': {}}, cors=_CORS,
                            content_type='application/json')),
    'hostile.json_scalar_body': Difference(
        call='``POST /echo`` with the JSON body ``7``',
        original='HTTP 500, Tornado\'s HTML page (``\'batch\' in 7``)',
        now='200, ``{"result": 7}``: the body is the parameters, as a list body was in '
            '1.0.12',
        reason='Any JSON value is a body; 1.0.12 failed on numbers and ``true``.',
        accepts=_web_answer(_tornado_500, status=200, body={'result': 7}, cors=_CORS,
                            content_type='application/json')),
    'hostile.method_not_text': Difference(
        call='``{"method": 7}``',
        original="``{'code': 1000, 'value': \"cannot concatenate 'str' and 'int' objects\"}``",
        now="``{'code': 1001, 'value': \"Cannot call '7'.\"}``",
        reason='A method name that is not text is an unknown method.',
        accepts=_web_answer(_body({'error': {
            'code': 1000, 'value': "cannot concatenate 'str' and 'int' objects"}}),
            body={'error': {'code': 1001, 'value': "Cannot call '7'."}})),
    'hostile.dunder': Difference(
        call='``GET /__init__``',
        original="``{'code': 1000, 'value': \"'method-wrapper' object has no attribute "
                 "'invoke'\"}``: it reached the package's ``__init__`` method",
        now="``{'code': 1001, 'value': \"Cannot call '__init__'.\"}``",
        reason=_WEB_LOOKUP_LIMITS,
        accepts=_web_answer(lambda answer: answer['body']['error']['code'] == 1000,
                            body={'error': {'code': 1001,
                                            'value': "Cannot call '__init__'."}})),
    'hostile.through_an_imported_module': Difference(
        call='``GET /echo/json`` (the ``json`` module ``echo`` imported)',
        original="``{'code': 1000, 'value': \"'module' object has no attribute "
                 "'invoke'\"}``: it reached the json module",
        now="``{'code': 1001, 'value': \"Cannot call 'echo.json'.\"}``",
        reason=_WEB_LOOKUP_LIMITS,
        accepts=_web_answer(lambda answer: answer['body']['error']['code'] == 1000,
                            body={'error': {'code': 1001,
                                            'value': "Cannot call 'echo.json'."}})),
    'hostile.function_attribute': Difference(
        call='``GET /a/b/invoke``',
        original="``{'code': 1000, 'value': \"'function' object has no attribute "
                 "'invoke'\"}``",
        now="``{'code': 1001, 'value': \"Cannot call 'a.b.invoke'.\"}``",
        reason=_WEB_LOOKUP_LIMITS,
        accepts=_web_answer(lambda answer: answer['body']['error']['code'] == 1000,
                            body={'error': {'code': 1001,
                                            'value': "Cannot call 'a.b.invoke'."}})),
    'hostile.non_ascii_user_id': Difference(
        call='``account.create`` with the user id ``j\\xf6rg``',
        original='HTTP 500, Tornado\'s HTML page (``str()`` of the id in the session object)',
        now='the account and its session, as for any id',
        reason='User ids are text; 1.0.12 could not put a non-ASCII one in an answer.',
        accepts=_web_answer(_tornado_500, status=200, cors=_CORS,
                            content_type='application/json',
                            body=lambda body: body['result']['user_id'] == u'j\xf6rg')),
    'accounts.update_without_password': Difference(
        call='``account.update`` (signed in) without ``password``',
        original="``{'code': 1000, 'value': \"'password'\"}`` (a KeyError)",
        now="``{'code': 1003, 'value': 'Missing parameters: password'}``",
        reason='``account.update`` needs the password; it now says so the way '
               '``@requires`` does.',
        accepts=_safe(lambda original, now: (
            original['body']['error'] == {'code': 1000, 'value': "'password'"}
            and now['body']['error'] == {'code': 1003,
                                         'value': 'Missing parameters: password'}
            and now['body']['session'] == original['body']['session']))),
    'hmac.after_state_saved': Difference(
        call='a signed ``increment`` after an earlier call saved the session state '
             '(``hmac_enabled``, ``--database=json``)',
        original='HTTP 500: the json driver\'s ``session.save()`` stores the session '
                 'without its key, so the next request fails the HMAC check and then '
                 'signing the error fails',
        now='the count, signed',
        reason='Saving a session keeps its HMAC key (a defect of 1.0.12\'s json driver).',
        accepts=_web_answer(_tornado_500, status=200, hmac='valid', cors=_CORS,
                            content_type='application/json')),
    'cookies_hmac.login': Difference(
        call='``account.create`` with ``use_cookies`` and ``hmac_enabled``',
        original='HTTP 500: the cookie version of ``create_session`` makes a session '
                 'without a key, and signing the answer fails',
        now='the account\'s session with its key, signed, and the cookie',
        reason='Cookies and HMAC work together (the session gets its key).',
        accepts=_web_answer(_tornado_500, status=200, hmac='valid', cors=_CORS,
                            content_type='application/json')),
    'cookies_hmac.signed_call': Difference(
        call='a signed call with the cookie and the session header, after the above',
        original='HTTP 500: the session the cookie names has no key, and signing the '
                 'Invalid HMAC answer fails',
        now='the user id, signed',
        reason='Cookies and HMAC work together (the session gets its key).',
        accepts=_web_answer(_tornado_500, status=200, hmac='valid', cors=_CORS,
                            body=lambda body: body['result'] == {'user_id': 'erin'})),
    'cookies.cross_site_form_post': Difference(
        call='a form post carrying the session cookie, ``Origin: http://evil.example``',
        original='answered as the signed-in user',
        now="403, ``{'code': 1004, 'value': 'Cross-site request refused: ...'}``",
        reason=_CROSS_SITE,
        accepts=_web_answer(lambda answer: answer['status'] == 200, **_CROSS_SITE_REFUSED)),
    'cookies.cross_site_multipart_post': Difference(
        call='a multipart post carrying the session cookie, ``Origin: http://evil.example``',
        original='answered as the signed-in user',
        now="403, ``{'code': 1004, 'value': 'Cross-site request refused: ...'}``",
        reason=_CROSS_SITE,
        accepts=_web_answer(lambda answer: answer['status'] == 200, **_CROSS_SITE_REFUSED)),
    'cookies.cross_site_get': Difference(
        call='a GET carrying the session cookie, ``Sec-Fetch-Site: cross-site``',
        original='answered as the signed-in user',
        now="403, ``{'code': 1004, 'value': 'Cross-site request refused: ...'}``",
        reason=_CROSS_SITE,
        accepts=_web_answer(lambda answer: answer['status'] == 200, **_CROSS_SITE_REFUSED)),
})

def render_rst(differences=None):
    """The list as a reStructuredText definition list, sorted by case id."""
    differences = DIFFERENCES if differences is None else differences
    lines = []
    for case in sorted(differences):
        entry = differences[case]
        lines.append('``%s``: %s' % (case, entry.call))
        lines.append('   *1.0.12:* %s' % entry.original)
        lines.append('')
        lines.append('   *Now:* %s' % entry.now)
        lines.append('')
        lines.append('   *Why:* %s' % entry.reason)
        lines.append('')
    return '\n'.join(lines)


if __name__ == '__main__':
    print(render_rst())
