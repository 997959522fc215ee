"""CURVE on old pyzmq wheels: ending a context never aborts another thread's handshake.

pyzmq wheels before 22.2.1 (all of Python 2.7's) close libsodium's random source
whenever a context ends or a key pair is made, and a CURVE handshake running at that
moment makes libsodium abort the process (libzmq issue 4241).  ``toto._sodium`` keeps
the source open; ``tests/curve_race.py`` races the two in a process of its own.
"""

import os
import subprocess
import sys

import pytest
import zmq

from workerproc import child_env

RACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'curve_race.py')

needs_curve = pytest.mark.skipif(not zmq.has('curve'), reason='libzmq without CURVE')


@needs_curve
@pytest.mark.timeout(60)
def test_contexts_ending_beside_curve_handshakes_do_not_abort_the_process():
    # Before toto._sodium: SIGABRT within a second on pyzmq 19 (Python 2.7 and 3.8).
    process = subprocess.Popen([sys.executable, RACE, '3'], env=child_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate()
    output = output.decode('utf-8', 'replace')
    assert process.returncode == 0, 'exit status %s\n%s' % (process.returncode, output)
    assert int(output.split('handshakes')[-1].split()[0]) > 0, output


@needs_curve
def test_the_random_source_is_kept_open_exactly_where_pyzmq_lacks_the_fix():
    import toto._security  # noqa: F401 -- what installs the fix
    from toto._sodium import FIXED_PYZMQ, keep_random_source_open
    old_pyzmq = tuple(zmq.pyzmq_version_info()[:3]) < FIXED_PYZMQ
    assert keep_random_source_open() is old_pyzmq
