"""One worker service for benchmarks/apps.py, under this package or under Toto 1.0.12.

    python benchmarks/app_service.py app.conf [--option=value ...]

Written for Python 2.7 and 3 alike: the same file runs the original package
(from TOTO_ORACLE_PYTHON's site-packages) and this one.
"""

import sys

from toto.worker import TotoWorkerService

if __name__ == '__main__':
    conf = sys.argv.pop(1)
    TotoWorkerService(conf).run()
