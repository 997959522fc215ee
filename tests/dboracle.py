"""Running a script under Toto 1.0.12 for the database differential tests.

The original runs in a Python 2.7 of its own (``$TOTO_ORACLE_PYTHON``, or
``$TOTO_ORACLE_DB_PYTHON`` with its database libraries; .ci/run makes both). A
test writes the 1.0.12 side as a script that prints JSON, starting with
:data:`PORTABLE`, and compares what it prints with :func:`portable` of this
side's values::

    python = oracle_python('TOTO_ORACLE_DB_PYTHON', 'toto==1.0.12 and redis==3.5.3')
    found = run_script(python, ['-c', PORTABLE + SCRIPT, str(port)])
    assert found['state'] == portable(session.state)
"""

from __future__ import absolute_import, division, print_function

import binascii
import datetime
import json
import os
import subprocess
import threading

import pytest

#: Python 2 source of ``portable(value)`` for oracle scripts: state as JSON can
#: carry it (dates as ISO text, non-ASCII byte strings as ``{'bytes': hex}``).
PORTABLE = r'''
import datetime


def portable(value):
    if isinstance(value, dict):
        return dict((k, portable(v)) for k, v in value.items())
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, str) and any(ord(c) > 127 for c in value):
        return {'bytes': value.encode('hex')}
    return value

'''

#: How long one oracle script may run before it is killed and its test fails.
SCRIPT_TIMEOUT = 30.0


def oracle_python(variable, needs):
    """The interpreter ``$variable`` names; skips the test without it (fails under CI)."""
    path = os.environ.get(variable)
    if path and os.path.isfile(path):
        return path
    reason = '$%s (a Python 2.7 with %s) is not set or missing' % (variable, needs)
    if os.environ.get('CI') == 'true':
        pytest.fail(reason)
    pytest.skip(reason)


def oracle_environment(**extra):
    """This process's environment without ``PYTHON*`` (the original toto, not this one)."""
    environment = dict((name, value) for name, value in os.environ.items()
                       if not name.startswith('PYTHON'))
    environment.update(extra)
    return environment


def run_script(python, arguments, cwd='/', environment=None):
    """Run ``python arguments...``; return the JSON it printed (it must exit 0)."""
    process = subprocess.Popen([python] + list(arguments), cwd=str(cwd),
                               env=environment or oracle_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(SCRIPT_TIMEOUT, process.kill)
    timer.start()
    try:
        output, errors = process.communicate()
    finally:
        timer.cancel()
    assert process.returncode == 0, errors.decode('utf-8', 'replace')
    return json.loads(output.decode('utf-8'))


def portable(value):
    """``value`` as the oracle scripts print theirs (see :data:`PORTABLE`), to compare."""
    if isinstance(value, dict):
        return dict((key, portable(item)) for key, item in value.items())
    if isinstance(value, list):
        return [portable(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        if any(byte > 127 for byte in bytearray(value)):
            return {'bytes': binascii.hexlify(value).decode('ascii')}
        return value.decode('ascii')
    return value
