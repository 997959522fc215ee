"""Run ``toto.server.TotoServer(conf_file, **kwargs).run()`` as a Toto app's script does.

    python run_server.py CONF_FILE [--option=value ...]

The web differential tests (tests/oracle_web.py) and the server benchmark run this
very script under both packages: the original Toto 1.0.12 (``$TOTO_ORACLE_PYTHON``)
and this one, with the same conf file and command line, so that the only thing that
differs is the ``toto`` imported.  Keyword arguments for the constructor come as a
JSON object in ``TOTO_ORACLE_SERVER_KWARGS`` (text turned into native ``str`` on
Python 2, which tornado's str options require).  This folder is ``sys.path[0]``, so
the method packages and startup modules beside this script import by their names.
"""

import json
import os
import sys

from toto.server import TotoServer

KWARGS_VARIABLE = 'TOTO_ORACLE_SERVER_KWARGS'


def _native(value):
    if sys.version_info[0] == 2 and isinstance(value, unicode):  # noqa: F821 - Python 2 only
        return value.encode('utf-8')
    return value


def main():
    conf_file = sys.argv.pop(1)
    kwargs = json.loads(os.environ.get(KWARGS_VARIABLE) or '{}')
    kwargs = dict((str(name), _native(value)) for name, value in kwargs.items())
    TotoServer(conf_file, **kwargs).run()


if __name__ == '__main__':
    main()
