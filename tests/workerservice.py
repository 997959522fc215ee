"""Run a TotoWorkerService as a program, the way Toto applications do (used by the tests).

    python workerservice.py --method_module=worker_methods --processes=2 ...

Keyword arguments for ``TotoWorkerService(...)`` come as a JSON object in the environment
variable ``TOTO_TEST_SERVICE_KWARGS`` and the conf file path in ``TOTO_TEST_SERVICE_CONF``,
so that the command line stays exactly what ``run()`` parses.
"""

import json
import os
import sys

import six

from toto.worker import TotoWorkerService

KWARGS_VARIABLE = 'TOTO_TEST_SERVICE_KWARGS'
CONF_VARIABLE = 'TOTO_TEST_SERVICE_CONF'


def _native(value):
    # JSON gives text; on Python 2 the str options want native strings.
    if sys.version_info[0] == 2 and isinstance(value, six.text_type):
        return value.encode('utf-8')
    return value


def main():
    kwargs = json.loads(os.environ.get(KWARGS_VARIABLE) or '{}')
    kwargs = {str(name): _native(value) for name, value in kwargs.items()}
    conf_file = os.environ.get(CONF_VARIABLE) or None
    TotoWorkerService(conf_file, **kwargs).run()


if __name__ == '__main__':
    main()
