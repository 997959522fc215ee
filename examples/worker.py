"""The example application's worker service.

    python examples/worker.py                  # options from worker.conf
    python examples/worker.py --processes=4    # the command line wins
    python examples/worker.py --help           # every option, by group

It runs a TotoWorkerService -- a router on ``worker_bind_address`` and
``processes`` worker processes -- for the ``methods`` package beside this
file.  Options are read from ``worker.conf`` (also beside this file), then
from the command line.  The script's directory is the first entry of
``sys.path``, so ``method_module = 'methods'`` finds that package wherever
the service is started from.
"""

from __future__ import absolute_import, division, print_function

import os

from tornado.options import define

from toto.worker import TotoWorkerService

HERE = os.path.dirname(os.path.abspath(__file__))

# An option of the application itself, read by the methods in
# methods/visits; it must be defined before the conf file is read.
define('visits_file', default='visits.log', type=str,
       group='example application',
       help='Text file the visits.* methods keep the visitor log in')


def main():
    TotoWorkerService(os.path.join(HERE, 'worker.conf')).run()


if __name__ == '__main__':
    main()
