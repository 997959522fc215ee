"""Smoke test of the database benchmark (benchmarks/databases.py): every measure has a number.

``python -m benchmarks.databases --quick``: one round of 0.4 s, Python clients, logins at
1.0.12's hash cost and authenticated calls, on every driver whose server is installed here
(under ``CI=true`` all must be), with 1.0.12 where ``$TOTO_ORACLE_DB_PYTHON`` is set.  The
numbers mean nothing at these sizes, so nothing here looks at how fast anything was.
Python 3 only, like the benchmarks.
"""

import json
import os
import subprocess
import sys

import pytest

if sys.version_info[0] < 3:
    pytest.skip('the benchmarks are Python 3 only', allow_module_level=True)

import dbservers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = {'redis': 'redis', 'mysql': 'mariadb', 'postgres': 'postgres', 'mongodb': 'mongodb'}


def _available_drivers():
    drivers = ['json']
    for driver, kind in sorted(KINDS.items()):
        reason = dbservers.missing(kind)
        if reason and os.environ.get('CI') == 'true':
            pytest.fail(reason)
        if not reason:
            drivers.append(driver)
    return drivers


@pytest.mark.timeout(150)
def test_a_quick_run_reports_every_measure_with_a_number(tmp_path):
    drivers = _available_drivers()
    oracle = os.environ.get('TOTO_ORACLE_DB_PYTHON')
    results = tmp_path / 'databases.json'
    process = subprocess.run(
        [sys.executable, '-m', 'benchmarks.databases', '--quick', '--drivers',
         ','.join(drivers), '--json', str(results)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=140)
    output = process.stdout.decode('utf-8')
    assert process.returncode == 0, process.stderr.decode('utf-8')[-3000:]
    assert 'ours/1.0.12' in output and 'ours/raw' in output
    measured = json.loads(results.read_text())['drivers']
    assert sorted(measured) == sorted(drivers)
    for driver, data in measured.items():
        medians = dict(((row['load'], row['kind']), row['median']) for row in data['measures'])
        expected = [('login-400', 'ours'), ('auth', 'ours')]
        if driver != 'json':
            expected.append(('auth', 'raw'))
        if oracle and driver in ('mysql', 'mongodb', 'json'):
            expected.append(('auth', '1.0.12'))
            if 'login-400' not in data['oracle_failures']:
                expected.append(('login-400', '1.0.12'))
        else:
            assert data['oracle'], driver  # the table says why there is no 1.0.12 column
        for key in expected:
            assert medians.get(key, 0) > 0, (driver, key, medians)
