"""Smoke test of the server benchmark (benchmarks/server.py): it runs and prints its table.

Tiny sizes (one round of one second, one process, plain requests only, this package and
bare Tornado; Python clients, so no ``wrk`` is needed): the numbers mean nothing, so
nothing here looks at how fast anything was.  Python 3 only, like the benchmarks.
"""

import json
import os
import subprocess
import sys

import pytest

if sys.version_info[0] < 3:
    pytest.skip('the benchmarks are Python 3 only', allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_tiny_run_measures_both_servers_and_prints_the_table(tmp_path):
    results = tmp_path / 'server.json'
    env = dict(os.environ)
    env.pop('TOTO_ORACLE_PYTHON', None)
    process = subprocess.run(
        [sys.executable, '-m', 'benchmarks.server', '--rounds', '1', '--duration', '1',
         '--warmup', '0', '--processes', '1', '--only', 'plain', '--kinds', 'bare,ours',
         '--client', 'python', '--connections', '4', '--json', str(results)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=40)
    output = process.stdout.decode('utf-8')
    assert process.returncode == 0, process.stderr.decode('utf-8')[-3000:]
    assert 'ours/bare' in output and 'req/s' in output
    summary = json.loads(results.read_text())['summary']
    assert sorted(row['server'] for row in summary) == ['bare', 'ours']
    for row in summary:
        assert row['rps'] > 0 and row['cpu_us'] > 0, row
