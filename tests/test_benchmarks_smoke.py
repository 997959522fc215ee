"""Smoke test of the benchmarks (benchmarks/): they run and report every measure.

Tiny sizes (``--quick``): the numbers mean nothing, so nothing here looks at
how fast anything was.  Python 3 only, like the benchmarks.
"""

import json
import os
import subprocess
import sys

import pytest

if sys.version_info[0] < 3:
    pytest.skip('the benchmarks are Python 3 only', allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every measure the default run reports (the curl ones need pycurl).
MEASURES = ['zmq_throughput_loop', 'zmq_cpu_loop', 'zmq_throughput_thread', 'zmq_cpu_thread',
            'zmq_latency_median', 'zmq_latency_p99', 'http_simple_throughput',
            'http_simple_cpu', 'http_simple_latency_median', 'http_simple_latency_p99',
            'processes_scaling', 'sweep_none_expired', 'sweep_some_expired',
            'memory_rss_growth', 'memory_pending_at_end']
CURL_MEASURES = ['http_curl_throughput', 'http_curl_cpu', 'http_curl_latency_median',
                 'http_curl_latency_p99']
# Measures compared with a baseline, so they have a raw number and a ratio.
PAIRED = [name for name in MEASURES + CURL_MEASURES
          if not name.startswith(('sweep', 'memory'))]


def _has_pycurl():
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return False
    return True


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _run(arguments, timeout):
    process = subprocess.Popen([sys.executable] + arguments, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0, (out + err).decode('utf-8', 'replace')[-4000:]
    return out.decode('utf-8')


@pytest.mark.timeout(300)
def test_quick_run_reports_every_measure_with_numbers(tmp_path):
    results = tmp_path / 'results.json'
    chart = tmp_path / 'chart.png'
    out = _run(['-m', 'benchmarks', '--quick', '--quiet', '--json', str(results),
                '--chart', str(chart)], timeout=240)
    document = json.loads(results.read_text())
    assert document['failures'] == {}
    measures = document['measures']
    expected = MEASURES + (CURL_MEASURES if _has_pycurl() else [])
    assert sorted(set(expected) - set(measures)) == []
    for name in expected:
        summary = measures[name]
        assert _is_number(summary['ours']), (name, summary)
        assert all(_is_number(v) for v in summary['rounds']['ours']), (name, summary)
        assert summary['title'] in out
        if name in PAIRED:
            assert _is_number(summary['raw']), (name, summary)
            assert _is_number(summary['ratio']), (name, summary)
    # Every call of the memory measure completed.
    assert measures['memory_pending_at_end']['ours'] == 0
    assert document['meta']['quick'] is True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not chart.exists()
    else:
        assert chart.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.timeout(120)
def test_script_entry_point_runs_a_subset(tmp_path):
    results = tmp_path / 'subset.json'
    _run([os.path.join('benchmarks', 'run.py'), '--quick', '--quiet', '--only', 'sweep',
          '--json', str(results), '--chart', ''], timeout=90)
    document = json.loads(results.read_text())
    assert document['failures'] == {}
    assert sorted(document['measures']) == ['sweep_none_expired', 'sweep_some_expired']


@pytest.mark.timeout(180)
def test_dispatch_comparison_reports_every_measure_for_both_modes(tmp_path):
    results = tmp_path / 'dispatch.json'
    out = _run(['-m', 'benchmarks.dispatch', '--quiet', '--rounds', '1', '--mixed-seconds',
                '0.6', '--echo-calls', '300', '--processes', '1', '--coroutine-seconds',
                '0.3', '--forwarder', '--json', str(results)], timeout=150)
    measures = json.loads(results.read_text())['measures']
    assert sorted(measures) == sorted([
        'mixed-p50', 'mixed-p90', 'mixed-p99', 'echo-1', 'echo-1-cpu', 'echo-1-fwd',
        'echo-1-fwd-cpu', 'coroutine', 'blocking', 'coroutine-gain'])
    for name, summary in measures.items():
        assert _is_number(summary['ours']), (name, summary)
        assert summary['title'] in out
        if name == 'coroutine-gain':
            continue
        assert _is_number(summary['raw']), (name, summary)
        # CPU time comes in clock ticks (10 ms): a few hundred calls may show
        # none, and a ratio to nothing is left out.
        assert _is_number(summary['ratio']) or summary['raw'] == 0, (name, summary)
