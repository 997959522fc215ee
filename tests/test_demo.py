"""``python -m toto.demo``, the README's main job, run as a newcomer runs it."""

import os
import re
import subprocess
import sys

import pytest

import toto

# Where this test imported toto from (the installed wheel, or a checkout on
# PYTHONPATH): the demo runs that same package.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(toto.__file__)))


@pytest.mark.timeout(90)
def test_the_demo_calls_the_workers_and_the_web_server_and_every_answer_is_expected(tmp_path):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [path for path in (PACKAGE_PARENT, env.get('PYTHONPATH')) if path])
    demo = subprocess.Popen([sys.executable, '-m', 'toto.demo'], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = demo.communicate()[0].decode('utf-8', 'replace')
    assert demo.returncode == 0, output
    counted = re.search(r'^(\d+) calls, (\d+) as expected$', output, re.M)
    assert counted and counted.group(1) == counted.group(2), output
    for row in ('zmq   callback', 'http  attribute', 'web   account.create',
                'web   counter, signed', 'web   worker_sum (via zmq)',
                'web   counter, logged out'):
        assert row in output, output
    assert 'UNEXPECTED' not in output
