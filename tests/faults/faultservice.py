"""Run a toto worker service as a program (used by the fault suite).

    python faultservice.py zmq  --method_module=fault_methods --processes=1 ...
    python faultservice.py http --method_module=fault_methods --http_worker_port=PORT ...

``zmq`` runs ``toto.worker.TotoWorkerService().run()``, ``http`` runs
``toto.httpworker.TotoHTTPWorkerService().run()``; every other argument is the
service's own command line.  ``TOTO_TEST_UMASK`` (octal) sets the umask first.
"""

import os
import sys


def main():
    if os.environ.get('TOTO_TEST_UMASK'):
        os.umask(int(os.environ['TOTO_TEST_UMASK'], 8))
    kind = sys.argv.pop(1)
    if kind == 'zmq':
        from toto.worker import TotoWorkerService as Service
    elif kind == 'http':
        from toto.httpworker import TotoHTTPWorkerService as Service
    else:
        raise SystemExit('usage: faultservice.py zmq|http [options]')
    Service().run()


if __name__ == '__main__':
    main()
