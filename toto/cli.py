"""The ``toto-worker`` and ``toto-invoke`` console scripts.

``toto-worker`` runs a worker service for a method module, over ZeroMQ (the
default) or HTTP, with every service option on its command line::

    toto-worker --method_module=methods --processes=4 \\
        --worker_bind_address=tcp://*:55555
    toto-worker --transport=http --method_module=methods --http_worker_port=8080

``toto-invoke`` calls one method from the shell: parameters in as JSON, the
result out as JSON, and a non-zero exit status for an error answer or a
timeout::

    toto-invoke --worker_address=tcp://127.0.0.1:55555 accounts.lookup '{"id": 7}'
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import os
import sys

import six
import tornado.options
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.options import options

from toto.options import safe_define

# Exit statuses of toto-invoke.
EXIT_OK = 0
EXIT_ERROR_ANSWER = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_TRANSPORT = 4

_WORKER_USAGE = """\
usage: toto-worker [--transport=zmq|http] --method_module=MODULE [OPTIONS]

Run a worker service for the methods under --method_module: over ZeroMQ (a
router and --processes worker processes) or, with --transport=http, as HTTP
worker processes. --start, --stop and --restart run it as a daemon;
--command=status|shutdown|reload talks to a running ZeroMQ service:
status prints a table of its processes (--json: a JSON document).
"""

_INVOKE_USAGE = """\
usage: toto-invoke --worker_address=ADDRESSES [OPTIONS] METHOD [JSON_PARAMETERS]

Call METHOD on a worker and print its answer as JSON. Parameters are a JSON
document (default {}). Exit status: 0 answer, 1 error answer, 2 usage,
3 timeout, 4 transport failure (refused connection, no worker).
"""


def define_worker_options():
    """Define the options only ``toto-worker`` has: --transport and --json."""
    safe_define('transport', default='zmq', type=str, group='toto-worker',
                metavar='zmq|http', help='Serve over ZeroMQ or HTTP')
    safe_define('json', default=False, type=bool, group='toto-worker',
                help='With --command=status: print the status as JSON')


def _wants_help(argv):
    return any(argument in ('-h', '--help', '-help') for argument in argv)


def _print_help(usage):
    print(usage, file=sys.stderr)
    tornado.options.print_help()


def _command_line_value(name, default):
    """The value of ``--name=value`` on the command line (the last one), or ``default``."""
    value = default
    for argument in sys.argv[1:]:
        if argument == '--':
            break
        key, equals, text = argument.lstrip('-').partition('=')
        if argument.startswith('-') and key.replace('-', '_') == name and equals:
            value = text
    return value


def worker_main(argv=None):
    """Entry point of ``toto-worker``."""
    import toto.httpworker  # noqa: F401 - defines the HTTP worker options
    from toto.httpworker import TotoHTTPWorkerService
    from toto.worker import CONTROL_COMMANDS, TotoWorkerService

    define_worker_options()
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    if _wants_help(sys.argv[1:]):
        _print_help(_WORKER_USAGE)
        return EXIT_OK
    # Method packages usually sit in the directory the service starts from,
    # which console scripts do not put on the import path themselves.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # Find --transport before the service reads every option: the method
    # package may define options of its own, which the service's first pass
    # over the options makes known.
    transport = _command_line_value('transport', options.transport)
    if transport == 'http':
        service_class = TotoHTTPWorkerService
    elif transport == 'zmq':
        service_class = TotoWorkerService
    else:
        print('toto-worker: --transport must be zmq or http, not %r' % transport,
              file=sys.stderr)
        return EXIT_USAGE
    try:
        service = service_class()
    except (tornado.options.Error, ImportError) as error:
        print('toto-worker: %s' % error, file=sys.stderr)
        return EXIT_USAGE
    if options.command and (options.transport != 'zmq' or
                            options.command not in CONTROL_COMMANDS):
        print('toto-worker: --command takes %s, and only with --transport=zmq'
              % ' or '.join(CONTROL_COMMANDS), file=sys.stderr)
        return EXIT_USAGE
    if options.command:
        try:
            if options.command == 'status':
                _print_status(options.control_socket_address)
            else:
                service.run()
        except (RuntimeError, ValueError) as error:
            # No service on that control address, or one another user holds.
            print('toto-worker: %s' % error, file=sys.stderr)
            return EXIT_TRANSPORT
        return EXIT_OK
    try:
        service._check_options()
    except ValueError as error:
        print('toto-worker: %s' % error, file=sys.stderr)
        return EXIT_USAGE
    service.run()
    return EXIT_OK


def _print_status(control_address):
    from toto.worker import service_status

    status = service_status(control_address)
    if options.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(status_table(status))


def _duration(seconds):
    seconds = int(seconds or 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return '%dd%02dh' % (days, hours)
    if hours:
        return '%dh%02dm' % (hours, minutes)
    if minutes:
        return '%dm%02ds' % (minutes, seconds)
    return '%ds' % seconds


def status_table(status):
    """The text ``toto-worker --command=status`` prints for a status document."""
    service = status.get('service') or {}
    router = status.get('router')
    count = service.get('processes')
    lines = ['service  pid %s  %s  up %s  %s worker process%s  dispatch %s' % (
        service.get('pid'), service.get('state'), _duration(service.get('uptime')),
        count, '' if count == 1 else 'es', service.get('dispatch'))]
    if router:
        lines.append('router   pid %s  %s  up %s  calls queued %s  clients connected %s  '
                     'answered %s  workers busy %s of %s' % (
                         router.get('pid'), 'draining' if router.get('draining') else
                         'routing', _duration(router.get('uptime')), router.get('calls_queued'),
                         router.get('clients_connected'), router.get('answered'),
                         router.get('workers_busy'), router.get('workers')))
    elif service.get('dispatch') == 'queue' and service.get('address'):
        lines.append('router   a queue device (--dispatch=queue): no figures')
    elif service.get('address'):
        lines.append('router   did not answer')
    else:
        lines.append('router   none (worker processes only)')
    header = ('PID', 'STATE', 'ANSWERED', 'ERRORS', 'IN HAND', 'UPTIME', 'LAST METHOD')
    rows = [header]
    for worker in status.get('workers') or []:
        rows.append((str(worker.get('pid')), worker.get('state', ''),
                     str(worker.get('answered', '')), str(worker.get('errors', '')),
                     str(worker.get('in_hand', '')),
                     _duration(worker['uptime']) if 'uptime' in worker else '',
                     worker.get('last_method') or '-'))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        lines.append('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return '\n'.join(lines)


def _json_default(value):
    # Worker results may hold bytes (pickle); show them instead of failing.
    if isinstance(value, six.binary_type):
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            return {'base64': base64.b64encode(value).decode('ascii')}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


@gen.coroutine
def _invoke_once(method, parameters):
    """Make one call on the configured connection; return (result, exit status)."""
    from toto.exceptions import TotoException
    from toto.workerconnection import WorkerConnection

    connection = WorkerConnection.instance()
    try:
        result = yield connection.invoke(method, parameters, **{'await': True})
    except TotoException as error:
        status = EXIT_TIMEOUT if error.value == 'Timeout' else EXIT_TRANSPORT
        raise gen.Return(({'error': dict(error.__dict__)}, status))
    except Exception as error:
        raise gen.Return(({'error': {'code': -1, 'value': str(error)}}, EXIT_TRANSPORT))
    finally:
        connection.close()
    status = EXIT_OK
    if isinstance(result, dict) and 'error' in result:
        status = EXIT_TIMEOUT if result['error'] == 'timeout' else EXIT_ERROR_ANSWER
    raise gen.Return((result, status))


def invoke_main(argv=None):
    """Entry point of ``toto-invoke``: ``toto-invoke [options] METHOD [JSON]``."""
    import toto.workerconnection  # noqa: F401 - defines the worker_ options

    argv = list(sys.argv[1:] if argv is None else argv)
    if _wants_help(argv):
        _print_help(_INVOKE_USAGE)
        return EXIT_OK
    arguments = tornado.options.parse_command_line([sys.argv[0]] + argv)
    if not 1 <= len(arguments) <= 2:
        print(_INVOKE_USAGE, file=sys.stderr)
        return EXIT_USAGE
    method = arguments[0]
    try:
        parameters = json.loads(arguments[1]) if len(arguments) > 1 else {}
    except ValueError as error:
        print('toto-invoke: parameters are not valid JSON: %s' % error, file=sys.stderr)
        return EXIT_USAGE
    if not options.worker_address:
        print('toto-invoke: --worker_address is required', file=sys.stderr)
        return EXIT_USAGE

    try:
        result, status = IOLoop.current().run_sync(lambda: _invoke_once(method, parameters))
    except (TypeError, ValueError) as error:
        print('toto-invoke: %s' % error, file=sys.stderr)
        return EXIT_USAGE
    output = json.dumps(result, default=_json_default, sort_keys=True)
    print(output, file=sys.stdout if status == EXIT_OK else sys.stderr)
    return status


if __name__ == '__main__':  # pragma: no cover
    sys.exit(invoke_main())
