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
