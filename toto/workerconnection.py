"""The transport-neutral face of Toto worker calls.

Importing this module defines the ``worker_*`` options, so any Tornado
application (a ``TotoService`` included) can be pointed at its workers from
the command line or a conf file, and :meth:`WorkerConnection.instance` builds
the matching connection::

    from tornado import gen
    from toto.workerconnection import WorkerConnection

    # python app.py --worker_address=tcp://10.0.0.5:55555
    @gen.coroutine
    def lookup(account_id):
        conn = WorkerConnection.instance()
        result = yield conn.invoke('accounts.lookup', {'id': account_id},
                                   **{'await': True})  # await=True on 2.7
        raise gen.Return(result)

Calls can also be spelled as attribute access: ``conn.accounts.lookup(
{'id': 1}, callback=cb)`` is ``conn.invoke('accounts.lookup', {'id': 1},
callback=cb)``.
"""

from __future__ import absolute_import, division, print_function

import logging
import threading

import six
from tornado.options import options

from toto.options import safe_define

logger = logging.getLogger('toto.workerconnection')

_OPTION_GROUP = 'worker connection'

safe_define('worker_address', default='', type=str, group=_OPTION_GROUP, metavar='ADDRESSES',
            help='Comma separated worker addresses: tcp://host:port for zmq, '
                 'http://host:port/path for http')
safe_define('worker_transport', default='zmq', type=str, group=_OPTION_GROUP,
            metavar='zmq|http',
            help="Transport used by WorkerConnection.instance(): 'zmq' or 'http'")
safe_define('worker_timeout', default=10.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='Default worker call timeout in seconds; negative never times out '
                 'or retries; 0 is not allowed')
safe_define('worker_auto_retry', default=False, type=bool, group=_OPTION_GROUP,
            help='zmq: resend a call that timed out instead of failing it')
safe_define('worker_retry_count', default=0, type=int, group=_OPTION_GROUP, metavar='N',
            help='http: how many times a call that failed in transport is resent')
safe_define('worker_max_in_flight', default=500, type=int, group=_OPTION_GROUP,
            metavar='N',
            help='zmq: calls on the wire to one worker address at once, over every '
                 'thread and IOLoop; further calls wait in the client, in order '
                 '(0: no bound)')
safe_define('worker_compression_module', type=str, group=_OPTION_GROUP, metavar='MODULE',
            help='Module with compress()/decompress() for worker messages, e.g. zlib')
safe_define('worker_serialization_module', type=str, group=_OPTION_GROUP,
            metavar='MODULE',
            help='Module with dumps()/loads() for worker messages, e.g. json '
                 '(default: pickle protocol 2)')
safe_define('worker_curve_server_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='zmq: the worker service\'s CURVE public key (Z85 text or certificate '
                 'file); turns on encryption and authentication')
safe_define('worker_curve_public_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='zmq: this client\'s CURVE public key (default: a fresh key pair)')
safe_define('worker_curve_secret_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='zmq: this client\'s CURVE secret key (Z85 text or .key_secret file)')
safe_define('worker_ca_file', type=str, group=_OPTION_GROUP, metavar='FILE',
            help='http: CA certificates (PEM) to verify https:// workers with')
safe_define('worker_validate_cert', default=True, type=bool, group=_OPTION_GROUP,
            help='http: verify the certificates of https:// workers')
safe_define('worker_client_cert', type=str, group=_OPTION_GROUP, metavar='FILE',
            help='http: client certificate (PEM) presented to https:// workers')
safe_define('worker_client_key', type=str, group=_OPTION_GROUP, metavar='FILE',
            help='http: private key (PEM) of --worker_client_cert')
safe_define('worker_http_client', default='default', type=str, group=_OPTION_GROUP,
            metavar='default|curl|simple',
            help="http: which HTTP client carries the calls: 'default' (whatever "
                 "AsyncHTTPClient is configured to), 'curl' (keeps connections open; "
                 "needs pycurl; fastest) or 'simple'")
safe_define('worker_http_max_clients', default=0, type=int, group=_OPTION_GROUP,
            metavar='N',
            help='http: requests in flight at once with the curl or simple client '
                 '(0: Tornado\'s default, 10)')
safe_define('worker_serialization_mime', default='application/pickle', type=str,
            group=_OPTION_GROUP,
            help='http: Content-Type sent with worker requests')

#: Shared connections made by ``instance()``, one per connection class.
_instances = {}
_instances_lock = threading.RLock()

TRANSPORTS = ('zmq', 'http')


def _clear_instances():
    """Forget the shared connections (closing them); for tests and reloads."""
    with _instances_lock:
        connections = list(_instances.values())
        _instances.clear()
    for connection in connections:
        connection.close()


def parse_addresses(address):
    """Return ``address`` as a list of address strings.

    Accepts a comma separated string or any iterable of strings; blanks and
    repeats are dropped and order is kept.
    """
    if address is None:
        return []
    if isinstance(address, (six.binary_type, six.text_type)):
        candidates = _native_text(address).split(',')
    else:
        candidates = [_native_text(candidate) for candidate in address]
    addresses = []
    for candidate in candidates:
        candidate = candidate.strip()
        if candidate and candidate not in addresses:
            addresses.append(candidate)
    return addresses


def _native_text(value):
    if isinstance(value, six.binary_type):
        value = value.decode('ascii')
    if not isinstance(value, six.text_type):
        raise TypeError('worker address must be a string, not %r' % (value,))
    return str(value) if six.PY3 else value.encode('ascii')


def check_timeout(timeout):
    """Return ``timeout`` as a float, refusing 0 and non-numbers."""
    if isinstance(timeout, bool):
        raise TypeError('timeout must be a number of seconds, not %r' % (timeout,))
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise TypeError('timeout must be a number of seconds, not %r' % (timeout,))
    if timeout == 0:
        raise ValueError('timeout must not be 0 (use a negative value to never time out)')
    if timeout != timeout:
        raise ValueError('timeout must not be NaN')
    return timeout


def check_max_in_flight(max_in_flight):
    """Return ``max_in_flight`` as an int, refusing negative numbers and non-integers."""
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, six.integer_types):
        raise TypeError('max_in_flight must be a whole number of calls, not %r'
                        % (max_in_flight,))
    if max_in_flight < 0:
        raise ValueError('max_in_flight must be 0 (no bound) or more, not %r'
                         % (max_in_flight,))
    return int(max_in_flight)


def check_method(method):
    """Refuse a method name that is not a non-empty string."""
    if not isinstance(method, six.string_types) or not method:
        raise TypeError('method must be a non-empty string such as "module.method", '
                        'not %r' % (method,))
    return method


def pop_await(kwargs, legacy_args=()):
    """Take the await flag from ``await=``, ``await_=`` or a 6th positional.

    ``await`` is a reserved word from Python 3.7 on, so it can only arrive
    through ``**kwargs``.  Anything else left in ``kwargs`` is a TypeError,
    as it would be for an ordinary signature.
    """
    if len(legacy_args) > 1:
        raise TypeError('invoke() takes at most 6 positional arguments (%d given)'
                        % (6 + len(legacy_args),))
    flags = [kwargs.pop(name) for name in ('await', 'await_') if name in kwargs]
    flags.extend(legacy_args)
    if kwargs:
        raise TypeError('invoke() got an unexpected keyword argument %r'
                        % (sorted(kwargs)[0],))
    return any(bool(flag) for flag in flags)


class WorkerConnection(object):
    """Base class of the worker connections; see the transport classes.

    Use a WorkerConnection to call methods on remote worker services.  The
    concrete classes are :class:`~toto.zmqworkerconnection.ZMQWorkerConnection`
    and :class:`~toto.httpworkerconnection.HTTPWorkerConnection`; both take
    ``address`` as a comma separated string or an iterable of strings, a
    default ``timeout`` (never 0; negative means never), optional
    ``compression`` (``compress``/``decompress``) and ``serialization``
    (``dumps``/``loads``, default pickle protocol 2) objects that must match
    the workers', and a default retry policy.  Retries may run a method more
    than once on the workers, and can congest them: use with care.

    Any attribute that is not part of the class starts an attribute-style
    call: ``conn.module.method(parameters, ...)`` is
    ``conn.invoke('module.method', parameters, ...)``.
    """

    def __getattr__(self, path):
        # Private names are never method paths; failing them keeps copy,
        # pickle and half-built instances from turning into worker calls.
        if path.startswith('_'):
            raise AttributeError(path)
        return WorkerInvocation(path, self)

    def __len__(self):
        """The number of calls still waiting for an answer."""
        return 0

    def close(self):
        """Release what the connection holds (nothing here).

        Defined on every connection so code written for either transport can
        call it -- and so ``conn.close`` is never taken for a worker method.
        """

    def log_error(self, error):
        """Log an error raised inside a result callback.

        Called from an ``except`` block; see :meth:`enable_traceback_logging`.
        """
        if getattr(self, '_log_tracebacks', False):
            logger.error('worker callback failed: %r', error, exc_info=True)
        else:
            logger.error('worker callback failed: %r', error)

    def enable_traceback_logging(self):
        """Make :meth:`log_error` include the full traceback."""
        self._log_tracebacks = True

    @classmethod
    def instance(cls):
        """Return the shared connection configured by the ``worker_*`` options.

        On ``WorkerConnection`` itself, ``--worker_transport`` picks the class:
        ``http`` gives :class:`~toto.httpworkerconnection.HTTPWorkerConnection`
        and ``zmq`` (the default) gives
        :class:`~toto.zmqworkerconnection.ZMQWorkerConnection`.  The instance
        is created on first use from ``--worker_address`` and the other
        ``worker_`` options; run your service with ``--help`` to list them.
        """
        if cls is WorkerConnection:
            transport = (options.worker_transport or '').strip().lower()
            if transport == 'http':
                from toto.httpworkerconnection import HTTPWorkerConnection
                return HTTPWorkerConnection.instance()
            if transport == 'zmq':
                from toto.zmqworkerconnection import ZMQWorkerConnection
                return ZMQWorkerConnection.instance()
            raise ValueError('unknown worker_transport %r: use one of %s'
                             % (options.worker_transport, ', '.join(TRANSPORTS)))
        with _instances_lock:
            connection = _instances.get(cls)
            if connection is None:
                connection = cls._from_options()
                _instances[cls] = connection
            return connection

    @classmethod
    def _from_options(cls):
        raise NotImplementedError('%s cannot be built from options' % cls.__name__)


class WorkerInvocation(object):
    """A method path under construction for an attribute-style call.

    ``conn.a.b`` is ``WorkerInvocation('a.b', conn)``; calling it calls
    ``conn.invoke('a.b', ...)`` with the same arguments.
    """

    def __init__(self, path, connection):
        self._path = path
        self._connection = connection

    def __call__(self, *args, **kwargs):
        return self._connection.invoke(self._path, *args, **kwargs)

    def __getattr__(self, path):
        if path.startswith('_'):
            raise AttributeError(path)
        return WorkerInvocation(self._path + '.' + path, self._connection)

    def __repr__(self):
        return '<WorkerInvocation %s>' % self._path
