"""Run a TotoServer from the command line, as a Toto app's start-up script does.

The method packages and hook modules beside this file are importable; options
come from the command line (and ``TOTO_TEST_SERVER_CONF``, a conf file, if set).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toto.server import TotoServer  # noqa: E402

if __name__ == '__main__':
    TotoServer(os.environ.get('TOTO_TEST_SERVER_CONF') or None).run()
