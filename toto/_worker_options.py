"""The options of the worker services, defined once for the ZeroMQ and the HTTP worker.

Importing this module defines them in :data:`tornado.options.options`, in
the ``worker service`` group of ``--help``; :mod:`toto.worker` and
:mod:`toto.httpworker` import it, and read the values when they start::

    import toto._worker_options  # noqa: F401 - defines the options
    from tornado.options import options

    options.parse_command_line(['prog', '--method_module=methods'])
"""

from __future__ import absolute_import, division, print_function

import os

# The database options (--database, --db_host...), which worker processes use
# as 1.0.12's did.
import toto.dbconnection  # noqa: F401
# The event options (--remote_event_receivers, --event_init_module...), which
# worker processes use to send events as 1.0.12's did.
import toto.events  # noqa: F401
from toto._security import default_socket_directory
from toto.options import safe_define

_OPTION_GROUP = 'worker service'

safe_define('method_module', default='methods', type=str, group=_OPTION_GROUP,
            metavar='MODULE',
            help='Package (or module) that holds the worker methods: a call to '
                 '"a.b" runs <method_module>.a.b.invoke(worker, parameters)')
safe_define('worker_bind_address', default='tcp://*:55555', type=str, group=_OPTION_GROUP,
            metavar='ADDRESS',
            help='Address the router binds for clients; empty: run worker processes '
                 'only, connected to --worker_socket_address')
safe_define('worker_socket_address',
            default='ipc://' + os.path.join(default_socket_directory(), 'workerservice.sock'),
            type=str, group=_OPTION_GROUP, metavar='ADDRESS',
            help='Address between the router and the worker processes (tcp to '
                 'spread workers over machines); the default is private to this user')
safe_define('control_socket_address',
            default='ipc://' + os.path.join(default_socket_directory(), 'workercontrol.sock'),
            type=str, group=_OPTION_GROUP, metavar='ADDRESS',
            help='Address the service takes control commands (--command) on; the '
                 'default is private to this user')
safe_define('command', type=str, metavar='status|shutdown', group=_OPTION_GROUP,
            help='Send this command to running worker processes and exit')
safe_define('startup_function', type=str, group=_OPTION_GROUP, metavar='MODULE.FUNCTION',
            help='module.function called in each worker process before it takes '
                 'calls, with the keyword arguments worker and db_connection')
safe_define('saturation_warning_after', default=5.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='Log a warning (at most once a minute per worker process) when calls '
                 'have queued for a worker process this long without a break; '
                 '0: never')
safe_define('dispatch', default='balanced', type=str, group=_OPTION_GROUP,
            metavar='balanced|queue',
            help='How the router hands calls to worker processes: balanced (only to '
                 'a process with room for it) or queue (in turn, the original '
                 'protocol; needed when the router or workers are the original '
                 'package\'s). Router and workers must agree')
safe_define('method_concurrency', default=100, type=int, group=_OPTION_GROUP,
            metavar='N',
            help='Coroutine methods a worker process runs at once (balanced '
                 'dispatch); plain methods always run one at a time')
safe_define('max_message_size', default=64 * 1024 * 1024, type=int, group=_OPTION_GROUP,
            metavar='BYTES',
            help='Largest call in bytes a worker accepts; a client sending more is '
                 'disconnected (zmq) or refused (http). -1: no limit')
safe_define('curve_secret_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='zmq: the service\'s CURVE secret key (Z85 text or .key_secret file); '
                 'clients then need its public key, and traffic is encrypted')
safe_define('curve_authorized_keys', type=str, group=_OPTION_GROUP, metavar='DIRECTORY',
            help='zmq: directory of client public certificates allowed in '
                 '(default with a secret key: any client that knows the server key)')
safe_define('compression_module', type=str, group=_OPTION_GROUP, metavar='MODULE',
            help='Module with compress()/decompress() for messages, e.g. zlib; '
                 'must match the clients')
safe_define('serialization_module', type=str, group=_OPTION_GROUP, metavar='MODULE',
            help='Module with dumps()/loads() for messages, e.g. json (default: '
                 'pickle protocol 2); must match the clients')
safe_define('metrics_port', type=int, group=_OPTION_GROUP, metavar='PORT',
            help='Serve Prometheus metrics of the service at http://ADDRESS:PORT/metrics '
                 '(needs prometheus_client: pip install toto-compat[metrics]); '
                 'unset or 0: off')
safe_define('metrics_address', default='127.0.0.1', type=str, group=_OPTION_GROUP,
            metavar='ADDRESS',
            help='Address the metrics endpoint (--metrics_port) listens on; the '
                 'default keeps it on this machine')
