"""Calling Toto workers over HTTP.

An :class:`HTTPWorkerConnection` POSTs each call to one of its worker URLs,
taking them in turn, with Tornado's ``AsyncHTTPClient`` on the current
IOLoop.  :meth:`~HTTPWorkerConnection.invoke` returns a Future; call it from
code running on the loop::

    from tornado import gen
    from toto.httpworkerconnection import HTTPWorkerConnection

    conn = HTTPWorkerConnection('http://10.0.0.5:8080/,http://10.0.0.6:8080/',
                                timeout=5.0, auto_retry_count=1)

    @gen.coroutine
    def lookup():
        result = yield conn.invoke('accounts.lookup', {'id': 7})
        raise gen.Return(result)

Whatever the worker answers, error statuses included, is decoded and returned
as the result.  Only transport failures fail the Future: after the retries,
``TotoException(-1, 'Timeout')`` for a timeout, otherwise the exception the
HTTP client raised.  Redirects are never followed: a ``3xx`` answer fails the
call with a :class:`~toto.exceptions.TotoException` that names the worker.
"""

from __future__ import absolute_import, division, print_function

import logging
import socket

import six
from six.moves.urllib.parse import urlsplit
from tornado.concurrent import Future
from tornado.httpclient import AsyncHTTPClient, HTTPError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.options import options

from toto._codec import MessageCodec
from toto._security import shortened
from toto.exceptions import ERROR_SERVER, TotoException
from toto.workerconnection import (WorkerConnection, check_method, check_timeout,
                                   parse_addresses, pop_await)

try:
    from tornado.simple_httpclient import HTTPTimeoutError
except ImportError:  # pragma: no cover - Tornado older than 5.1
    HTTPTimeoutError = None

logger = logging.getLogger('toto.httpworkerconnection')

# What a negative timeout ("never") becomes for Tornado's clients.  Zero is
# not usable: Tornado 5.1's simple client then skips connecting altogether.
# A week still fits libcurl's millisecond timeouts in a 32-bit long.
_NO_LIMIT = 7 * 24 * 3600.0

# libcurl's "operation timed out" error number, as carried by CurlError.
_CURLE_OPERATION_TIMEDOUT = 28

_TIMEOUT_TYPES = tuple(t for t in (HTTPTimeoutError, socket.timeout,
                                   getattr(six.moves.builtins, 'TimeoutError', None))
                       if t is not None)


def _is_timeout(error):
    """Tell whether a transport failure means the attempt ran out of time."""
    if isinstance(error, _TIMEOUT_TYPES):
        return True
    if isinstance(error, HTTPError) and error.code == 599:
        if getattr(error, 'errno', None) == _CURLE_OPERATION_TIMEDOUT:
            return True
        text = str(error).lower()
        return 'timeout' in text or 'timed out' in text
    return False


def _check_http_address(address):
    parts = urlsplit(address)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise ValueError('worker address %r is not an http:// or https:// URL' % (address,))
    return address


def _redirect_text(url, code, response):
    """Say which worker redirected a call, and where to, cut to a log-sized length."""
    location = ''
    if response is not None:
        location = response.headers.get('Location', '')
    return 'the worker at %s answered %d (a redirect to %s); a redirect is not an answer' % (
        url, code, shortened(repr(location), 200))


def _error_result(error):
    """The ``{'error': ...}`` answer a callback gets for a failed call."""
    if isinstance(error, TotoException):
        return {'error': dict(error.__dict__)}
    return {'error': {'code': ERROR_SERVER, 'value': str(error)}}


class _HTTPCall(object):
    """One call's state across its attempts."""

    __slots__ = ('future', 'body', 'timeout', 'retries', 'attempt', 'url')

    def __init__(self, future, body, timeout, retries):
        self.future = future
        self.body = body
        self.timeout = timeout
        self.retries = retries
        self.attempt = 0
        self.url = None


_ignored_keywords = set()


def _warn_ignored_keyword(name):
    if name in _ignored_keywords or len(_ignored_keywords) > 100:
        return
    _ignored_keywords.add(name)
    logger.warning('HTTPWorkerConnection.invoke() ignores the keyword argument %s, as '
                   'toto 1.0.12 did', shortened(repr(name)))


class HTTPWorkerConnection(WorkerConnection):
    """Make calls to Toto workers with HTTP POST requests.

    ``address`` is a comma separated string or an iterable of worker URLs;
    calls go to them in turn.  ``timeout`` (seconds, never 0; negative means
    no limit) bounds every attempt.  ``compression`` and ``serialization``
    must match the workers'; ``serialization_mime`` is sent as the request's
    ``Content-Type``.  ``auto_retry_count`` is how many times a call that
    failed in transport (timeout, refused or reset connection) is sent again,
    each time to the next worker.  A retried method may run more than once,
    and retries add load to workers that are already slow: use with care.
    """

    def __init__(self, address, timeout=10.0, compression=None, serialization=None,
                 serialization_mime='application/pickle', auto_retry_count=0):
        self.timeout = check_timeout(timeout)
        self.auto_retry_count = self._check_retry_count(auto_retry_count)
        self._codec = MessageCodec(compression, serialization)
        self.compression = self._codec.compression
        self.serialization = self._codec.serialization
        self.serialization_mime = serialization_mime or 'application/pickle'
        #: The worker URLs calls are sent to.
        self.active_connections = set()
        # The same URLs in round robin order.
        self._endpoints = []
        self._next_endpoint = 0
        self._pending_count = 0
        self._tls = {}
        self._client_class = None
        self._client_options = {}
        self._clients = {}
        self.set_connections(address)

    def configure_client(self, kind='default', max_clients=None):
        """Choose the HTTP client the calls go through.

        ``'default'`` (the default) uses ``AsyncHTTPClient()``, whatever the
        application configured.  ``'curl'`` gives this connection its own
        ``CurlAsyncHTTPClient`` (needs ``pycurl``), which keeps connections
        to the workers open between calls: the fast path, see the
        performance page.  ``'simple'`` gives it its own
        ``SimpleAsyncHTTPClient``.  ``max_clients`` is how many requests the
        client runs at once (Tornado's default is 10).
        """
        if kind in (None, '', 'default'):
            client_class = None
        elif kind == 'curl':
            from tornado.curl_httpclient import CurlAsyncHTTPClient as client_class
        elif kind == 'simple':
            from tornado.simple_httpclient import SimpleAsyncHTTPClient as client_class
        else:
            raise ValueError("HTTP client must be 'default', 'curl' or 'simple', not %r"
                             % (kind,))
        options = {}
        if max_clients:
            options['max_clients'] = int(max_clients)
        if client_class is None and options:
            raise ValueError("max_clients applies to the 'curl' and 'simple' clients only")
        self._client_class, self._client_options = client_class, options
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _client(self):
        if self._client_class is None:
            return AsyncHTTPClient()
        loop = IOLoop.current()
        client = self._clients.get(loop)
        if client is None:
            # One client per loop, as AsyncHTTPClient() keeps them, but owned
            # by this connection so the application's choice is untouched.
            client = self._client_class(force_instance=True, **self._client_options)
            self._clients[loop] = client
        return client

    def close(self):
        """Close the HTTP clients this connection made for itself."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def configure_tls(self, ca_file=None, validate_cert=True, client_cert=None,
                      client_key=None):
        """Set how ``https://`` workers are verified and what this client shows.

        ``ca_file`` is a PEM bundle of the certificate authorities to trust
        (default: the system's); ``validate_cert=False`` turns verification
        off (only for tests); ``client_cert`` and ``client_key`` are PEM files
        for workers that require client certificates.
        """
        tls = {'validate_cert': bool(validate_cert)}
        if ca_file:
            tls['ca_certs'] = ca_file
        if client_cert:
            tls['client_cert'] = client_cert
        if client_key:
            tls['client_key'] = client_key
        self._tls = tls

    @classmethod
    def _from_options(cls):
        connection = cls(options.worker_address,
                         timeout=options.worker_timeout,
                         compression=options.worker_compression_module or None,
                         serialization=options.worker_serialization_module or None,
                         serialization_mime=options.worker_serialization_mime,
                         auto_retry_count=options.worker_retry_count)
        connection.configure_client(options.worker_http_client,
                                    options.worker_http_max_clients or None)
        connection.configure_tls(ca_file=options.worker_ca_file,
                                 validate_cert=options.worker_validate_cert,
                                 client_cert=options.worker_client_cert,
                                 client_key=options.worker_client_key)
        return connection

    @classmethod
    def instance(cls):
        """Return the shared connection configured by the ``worker_*`` options.

        It is created on first use from ``--worker_address``,
        ``--worker_timeout``, ``--worker_retry_count``,
        ``--worker_serialization_mime`` and the compression and serialization
        module options.
        """
        return super(HTTPWorkerConnection, cls).instance()

    @staticmethod
    def _check_retry_count(count):
        if isinstance(count, bool) or not isinstance(count, six.integer_types) or count < 0:
            raise ValueError('auto_retry_count must be a whole number >= 0, not %r' % (count,))
        return count

    def __len__(self):
        return self._pending_count

    # -- connection set ---------------------------------------------------

    def add_connection(self, address):
        """Send calls to the worker(s) at ``address`` too, in turn with the rest."""
        for url in [_check_http_address(a) for a in parse_addresses(address)]:
            if url not in self.active_connections:
                self.active_connections.add(url)
                self._endpoints.append(url)

    def remove_connection(self, address):
        """Stop sending calls to ``address``; unknown addresses are ignored."""
        for url in parse_addresses(address):
            if url in self.active_connections:
                self.active_connections.discard(url)
                self._endpoints.remove(url)

    def set_connections(self, addresses):
        """Send calls to exactly ``addresses`` from now on."""
        wanted = [_check_http_address(a) for a in parse_addresses(addresses)]
        self.remove_connection([url for url in self._endpoints if url not in wanted])
        self.add_connection(wanted)

    def _pick_endpoint(self, failed=None):
        """The next worker URL in turn or, for a retry, the one after ``failed``."""
        endpoints = self._endpoints
        if not endpoints:
            raise TotoException(-1, 'No active connections')
        if failed in endpoints:
            return endpoints[(endpoints.index(failed) + 1) % len(endpoints)]
        index = self._next_endpoint % len(endpoints)
        self._next_endpoint = index + 1
        return endpoints[index]

    # -- calls ------------------------------------------------------------

    def invoke(self, method, parameters={}, timeout=None, auto_retry_count=None, **kwargs):
        """Call ``method`` on a worker with ``parameters``; return a Future.

        ``timeout`` and ``auto_retry_count`` default to the connection's
        values.  The Future resolves to whatever the worker answered -- error
        bodies from 404 or 500 responses included -- and fails only when every
        attempt failed in transport: ``TotoException(-1, 'Timeout')`` for a
        timeout, otherwise the client's exception.

        For code shared with :class:`~toto.zmqworkerconnection.ZMQWorkerConnection`,
        ``callback=`` is called with the result (or, for a failed call, with
        ``{'error': {'code': ..., 'value': ...}}``), and ``await=True`` /
        ``await_=True`` are accepted and change nothing.  Any other keyword
        argument is ignored, as 1.0.12 ignored it, with a warning logged
        once per name.
        """
        callback = kwargs.pop('callback', None)
        for name in [name for name in kwargs if name not in ('await', 'await_')]:
            del kwargs[name]
            _warn_ignored_keyword(name)
        pop_await(kwargs)
        check_method(method)
        timeout = self.timeout if timeout is None else check_timeout(timeout)
        if auto_retry_count is None:
            auto_retry_count = self.auto_retry_count
        else:
            auto_retry_count = self._check_retry_count(auto_retry_count)
        if callback is not None and not callable(callback):
            raise TypeError('callback must be callable, not %r' % (callback,))
        body = self._codec.dumps_call(method, parameters)
        future = Future()
        self._pending_count += 1
        self._attempt(_HTTPCall(future, body, timeout, auto_retry_count))
        if callback is not None:
            future.add_done_callback(lambda done: self._run_callback(callback, done))
        return future

    def _run_callback(self, callback, future):
        try:
            result = future.result()
        except Exception as error:
            result = _error_result(error)
        try:
            callback(result)
        except Exception as error:
            self.log_error(error)

    # Each attempt chains on the client's Future with a done-callback rather
    # than running as a coroutine: a coroutine costs one more IOLoop pass
    # per call, which shows as ~8% of throughput with the curl client.

    def _attempt(self, call):
        try:
            url = self._pick_endpoint(failed=call.url)
        except TotoException as error:
            self._finish(call, error=error)
            return
        call.url = url
        limit = call.timeout if call.timeout > 0 else _NO_LIMIT
        request = HTTPRequest(url, method='POST', body=call.body,
                              headers={'Content-Type': self.serialization_mime},
                              request_timeout=limit, connect_timeout=limit,
                              follow_redirects=False, **self._tls)
        try:
            fetching = self._client().fetch(request)
        except Exception as error:
            self._failed_attempt(call, error)
            return
        fetching.add_done_callback(lambda done: self._on_response(call, done))

    def _on_response(self, call, fetching):
        try:
            response = fetching.result()
        except HTTPError as error:
            # An error status is still the worker's answer; 599 is Tornado's
            # code for "no answer at all".
            if 300 <= error.code < 400:
                # A worker never redirects: following one would send the
                # call, or fetch an answer, from wherever the Location says.
                self._finish(call, error=TotoException(-1, _redirect_text(
                    call.url, error.code, error.response)))
                return
            if error.code != 599 and error.response is not None:
                if error.response.body:
                    self._finish_with_body(call, error.response.body)
                else:
                    # Refused before any method ran (a body over the
                    # worker's size limit, say): nothing to decode.
                    self._finish(call, error=error)
                return
            self._failed_attempt(call, error)
        except Exception as error:
            self._failed_attempt(call, error)
        else:
            self._finish_with_body(call, response.body)

    def _failed_attempt(self, call, failure):
        if call.attempt >= call.retries:
            if _is_timeout(failure):
                failure = TotoException(-1, 'Timeout')
            self._finish(call, error=failure)
            return
        call.attempt += 1
        logger.debug('retrying call on the next worker after %r (attempt %d of %d)',
                     failure, call.attempt, call.retries)
        self._attempt(call)

    def _finish_with_body(self, call, body):
        try:
            result = self._decode(body)
        except Exception as error:
            self._finish(call, error=error)
        else:
            self._finish(call, result=result)

    def _finish(self, call, result=None, error=None):
        self._pending_count -= 1
        future = call.future
        if future.done():  # cancelled by the caller
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _decode(self, body):
        if not body:
            return None
        return self._codec.loads(body)
