"""Events between Toto processes: named messages pushed over ZeroMQ.

An :class:`EventManager` listens on one address (a ZeroMQ PULL socket, read
by a daemon thread) and pushes events to every server it was told about (one
PUSH socket each).  Handlers registered for an event name run when that event
arrives, either on the listener thread or on the IOLoop of the process, which
is what a request handler that writes its answer from an event needs::

    from toto.events import EventManager

    events = EventManager('tcp://127.0.0.1:8999')
    events.register_server('tcp://127.0.0.1:8999')     # itself
    events.register_server('tcp://127.0.0.1:9000')     # another process
    events.start_listening()       # call it on the thread that runs the IOLoop

    def on_message(args):
        logging.info('message: %r', args)

    events.register_handler('message', on_message, run_on_main_loop=True,
                            persist=True)
    events.send('message', {'text': 'hello'})          # to every server
    events.send('message', {'text': 'one'}, broadcast=False)   # round-robin

:func:`configure_for_process` sets a server process up the way Toto 1.0.12
did: process ``i`` of a service listens on ``event_port + i`` and sends to
every process of the service and to each ``--remote_event_receivers``
address.

The wire format is Toto 1.0.12's, so processes of either package exchange
events: one ZeroMQ frame holding ``zlib.compress(pickle.dumps({'name': name,
'args': args}, 0))``.  A Python 2 ``str`` arrives on Python 3 as text when
it is valid UTF-8 and as ``bytes`` otherwise; Python 3 ``bytes`` arrive on
Python 2 as ``str``.  ``--event_serialization=json`` sends JSON instead
(between processes of this package only; every listener reads it).

What differs from 1.0.12, all for safety (see each option's help):

* the listener binds ``--event_bind_host``, 127.0.0.1 unless configured;
* incoming pickles may only name the plain data types listed in
  ``_SAFE_GLOBALS`` (sets, dates, decimals, UUIDs...) and those in
  ``--event_pickle_globals`` (``*``: any, as 1.0.12);
* frames over ``--event_max_size`` bytes, compressed or not, are dropped;
* CURVE (``--event_curve_secret_key``) encrypts and authenticates events
  between processes of this package;
* :meth:`EventManager.send` may be called from any thread, and a server whose
  queue is full costs at most ``--event_send_timeout`` once instead of
  blocking every later send.
"""

from __future__ import absolute_import, division, print_function

import collections
import importlib
import json
import logging
import random
import sys
import threading
import zlib

import six
import zmq
from six.moves import cPickle as pickle
from tornado.ioloop import IOLoop
from tornado.options import options

from toto._eventlistener import (CURVE_ZAP_DOMAIN, DropLog, Listener,  # noqa: F401
                                 start_authenticator)
from toto._eventwire import EVENT_PICKLE_PROTOCOL, EventReader, split_names  # noqa: F401
from toto._security import is_loopback, load_curve_key, shortened, zmq_bind_host
from toto.options import safe_define

logger = logging.getLogger('toto.events')

_OPTION_GROUP = 'events'

# The four options of Toto 1.0.12 (defined by its toto/server.py); names and
# defaults are part of the contract.
safe_define('event_port', default=8999, type=int, group=_OPTION_GROUP, metavar='PORT',
            help='Process i of a server listens for events on event_port + i')
safe_define('remote_event_receivers', type=str, multiple=True, group=_OPTION_GROUP,
            metavar='ADDRESS,...',
            help='Further event listeners every process sends to, e.g. '
                 'tcp://10.0.0.2:8999 (comma separated)')
safe_define('event_mode', default='off', type=str, group=_OPTION_GROUP, metavar='off|on|only',
            help='off: no events; on: events and methods; only: an event server '
                 'without the method handler')
safe_define('event_init_module', default=None, type=str, group=_OPTION_GROUP,
            metavar='MODULE',
            help="Module whose invoke(event_manager) is called once the process's "
                 'event manager is set up')
# Added by toto-compat.
safe_define('event_bind_host', default='127.0.0.1', type=str, group=_OPTION_GROUP,
            metavar='HOST',
            help='Host the event listener binds; * listens on every interface as '
                 'Toto 1.0.12 did (then protect it with --event_curve_secret_key)')
safe_define('event_serialization', default='pickle', type=str, group=_OPTION_GROUP,
            metavar='pickle|json',
            help='pickle: the Toto 1.0.12 wire; json: send JSON, and refuse pickled '
                 'events (every peer must be toto-compat)')
safe_define('event_pickle_globals', type=str, multiple=True, group=_OPTION_GROUP,
            metavar='MODULE.NAME,...',
            help='Classes and functions a received pickle may name besides the plain '
                 'data types (sets, dates, decimals, UUIDs); * allows any, as Toto '
                 '1.0.12 did, which lets any sender run code in this process')
safe_define('event_max_size', default=16 * 1024 * 1024, type=int, group=_OPTION_GROUP,
            metavar='BYTES',
            help='Largest event in bytes, before and after decompression; larger '
                 'ones are dropped by the listener and refused by send(). '
                 '0 or negative: no limit')
safe_define('event_send_timeout', default=1.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help="How long send() waits for a server whose queue is full before it "
                 "drops the event; the server's next events are dropped at once "
                 'until it takes one again. Negative: wait forever (Toto 1.0.12)')
safe_define('event_curve_secret_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help='CURVE secret key (Z85 text or .key_secret file): the listener '
                 'serves with it and event sockets connect with it. Every peer must '
                 'be toto-compat')
safe_define('event_curve_server_key', type=str, group=_OPTION_GROUP, metavar='KEY|FILE',
            help="Public CURVE key of the listeners events are sent to (default: "
                 "this process's own, i.e. one key pair shared by every process)")
safe_define('event_curve_authorized_keys', type=str, group=_OPTION_GROUP,
            metavar='DIRECTORY',
            help='Directory of public certificates allowed to send events (default '
                 'with a secret key: only holders of that same key pair)')

# What a socket may still deliver after it is closed, in milliseconds.
_CLOSE_LINGER_MS = 1000

_instance_lock = threading.Lock()


def event_address(host, port):
    """The ZeroMQ address of an event listener: ``tcp://<host>:<port>``.

    IPv6 hosts are bracketed (``::1`` gives ``tcp://[::1]:8999``); ``*`` is
    every interface.
    """
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError('event port %d is outside 1-65535' % port)
    host = host or '*'
    if ':' in host and not host.startswith('['):
        host = '[%s]' % host
    return 'tcp://%s:%d' % (host, port)


def configure_for_process(manager=None, service_id=0, process_count=1, event_port=None,
                          bind_host=None, remote_receivers=None, init_module=None,
                          listen=True):
    """Set a service process's event manager up as Toto 1.0.12's server did.

    * listen on ``event_address(bind_host, event_port + service_id)`` (unless
      ``listen`` is false, as for worker processes);
    * send to ``event_port + i`` on this machine for each of the
      ``process_count`` processes of the service, this one included;
    * send to each of ``remote_receivers``;
    * call ``init_module.invoke(manager)``.

    Arguments left as None come from the options ``event_port``,
    ``event_bind_host``, ``remote_event_receivers`` and ``event_init_module``;
    ``manager`` defaults to :meth:`EventManager.instance`.  ``init_module``
    may be a module or its dotted name.  An address listed twice is
    registered once.  Returns the manager.
    """
    if manager is None:
        manager = EventManager.instance()
    port = options.event_port if event_port is None else event_port
    host = options.event_bind_host if bind_host is None else bind_host
    if listen:
        manager.address = event_address(host, port + service_id)
        manager.start_listening()
    local_host = _connect_host(host)
    addresses = [event_address(local_host, port + index) for index in range(process_count)]
    if remote_receivers is None:
        remote_receivers = options.remote_event_receivers
    addresses.extend(split_names(remote_receivers))
    for address in addresses:
        if manager.has_server(address):
            logger.warning('event receiver %s is listed twice; registered once', address)
            continue
        manager.register_server(address)
    module = _init_module(options.event_init_module if init_module is None else init_module)
    if module is not None:
        module.invoke(manager)
    return manager


class EventManager(object):
    """Sends events to registered servers and runs handlers for the ones it receives.

    ``address`` is where :meth:`start_listening` binds (it may also be set
    later, as Toto's server does on :meth:`instance`).  ``io_loop`` is the
    loop ``run_on_main_loop`` handlers run on; without it, the manager takes
    the loop running where :meth:`start_listening` is called, or else the
    current IOLoop of the thread that registers the first
    ``run_on_main_loop`` handler (Toto 1.0.12 used ``IOLoop.instance()``,
    which on Tornado 5 and later is a new loop on the listener thread that
    never runs).

    The other arguments override the options of the same meaning (read when
    they are needed, so options parsed after the manager was made apply):
    ``serialization`` (``event_serialization``), ``max_size``
    (``event_max_size``), ``pickle_globals`` (``event_pickle_globals``),
    ``send_timeout`` (``event_send_timeout``), ``curve_secret_key``,
    ``curve_server_key`` and ``curve_authorized_keys``
    (``event_curve_*``).

    Every method may be called from any thread.
    """

    def __init__(self, address=None, io_loop=None, serialization=None, max_size=None,
                 pickle_globals=None, send_timeout=None, curve_secret_key=None,
                 curve_server_key=None, curve_authorized_keys=None):
        self.address = address
        self.io_loop = io_loop
        self._settings = {
            'event_serialization': serialization,
            'event_max_size': max_size,
            'event_pickle_globals': pickle_globals,
            'event_send_timeout': send_timeout,
            'event_curve_secret_key': curve_secret_key,
            'event_curve_server_key': curve_server_key,
            'event_curve_authorized_keys': curve_authorized_keys,
        }
        # Guards the servers, their sockets (a ZeroMQ socket is not
        # thread-safe) and the context.
        self._lock = threading.RLock()
        self._context = None
        self._listener_context = None
        self._servers = {}
        self._queued_servers = collections.deque()
        self._handlers_lock = threading.Lock()
        self._handlers = {}
        self._listener = None
        self._authenticator = None
        self._closed = False
        self._send_drops = DropLog('event not sent')

    @classmethod
    def instance(cls):
        """The manager shared by the whole process, made on first use."""
        with _instance_lock:
            manager = cls.__dict__.get('_instance')
            if manager is None:
                manager = cls()
                cls._instance = manager
            return manager

    # -- sending -------------------------------------------------------------------

    def register_server(self, address, curve_server_key=None):
        """Send future events to the listener at ``address`` too.

        Raises ValueError if ``address`` is already registered.  With CURVE
        on, ``curve_server_key`` is that listener's public key when it
        differs from ``--event_curve_server_key``.
        """
        with self._lock:
            if address in self._servers:
                raise ValueError('event server already registered: %s' % (address,))
            socket = self._get_context().socket(zmq.PUSH)
            try:
                socket.setsockopt(zmq.LINGER, _CLOSE_LINGER_MS)
                timeout = self._setting('event_send_timeout')
                socket.setsockopt(zmq.SNDTIMEO, -1 if timeout < 0 else int(timeout * 1000))
                if '[' in address:
                    socket.setsockopt(zmq.IPV6, 1)
                self._secure_sender(socket, curve_server_key)
                socket.connect(address)
            except Exception:
                socket.close(0)
                raise
            self._servers[address] = _Server(address, socket)
            self.refresh_server_queue()

    def has_server(self, address):
        """Tell whether ``address`` is registered."""
        with self._lock:
            return address in self._servers

    def remove_server(self, address):
        """Stop sending to ``address``; KeyError if it is not registered."""
        with self._lock:
            server = self._servers.pop(address)
            server.socket.close()
            self.refresh_server_queue()

    def remove_all_servers(self):
        """Stop sending to any server."""
        with self._lock:
            for server in self._servers.values():
                server.socket.close()
            self._servers.clear()
            self.refresh_server_queue()

    def refresh_server_queue(self):
        """Rebuild, in random order, the queue non-broadcast events take turns on."""
        with self._lock:
            servers = list(self._servers.values())
            random.shuffle(servers)
            self._queued_servers.clear()
            self._queued_servers.extend(servers)

    def send_to_server(self, address, event_name, event_args):
        """Send an event to the registered server at ``address`` only.

        Raises KeyError if ``address`` is not registered.  Returns whether
        the server's queue took the event.
        """
        frame = self._encode(event_name, event_args)
        with self._lock:
            return self._push(self._servers[address], event_name, frame)

    def send(self, event_name, event_args, broadcast=True):
        """Send an event to every registered server, or with ``broadcast=False``
        to the next one in turn (skipping servers whose queue is full).

        Does nothing when no server is registered.  Returns how many servers
        took the event.  Raises TypeError if ``event_args`` cannot be
        serialized and ValueError if the event is over ``event_max_size``.
        """
        with self._lock:
            if not self._servers:
                return 0
        frame = self._encode(event_name, event_args)
        with self._lock:
            queue = self._queued_servers
            if broadcast:
                return sum(1 for server in list(queue) if self._push(server, event_name, frame))
            for _ in range(len(queue)):
                server = queue[0]
                queue.rotate(-1)
                if self._push(server, event_name, frame):
                    return 1
            return 0

    def _encode(self, event_name, event_args):
        serialization = _check_serialization(self._setting('event_serialization'))
        event = {'name': event_name, 'args': event_args}
        try:
            if serialization == 'json':
                data = json.dumps(event, separators=(',', ':'))
                if isinstance(data, six.text_type):
                    data = data.encode('ascii')
            else:
                data = pickle.dumps(event, EVENT_PICKLE_PROTOCOL)
        except Exception as error:
            six.raise_from(TypeError('cannot serialize event %r (%s): %s: %s'
                                     % (event_name, serialization,
                                        type(error).__name__, error)), error)
        frame = zlib.compress(data)
        max_size = self._setting('event_max_size')
        if max_size > 0 and max(len(frame), len(data)) > max_size:
            raise ValueError('event %r is %d bytes (%d compressed), over event_max_size=%d'
                             % (event_name, len(data), len(frame), max_size))
        return frame

    def _push(self, server, event_name, frame):
        # Called with self._lock held.  A server that once let its queue fill
        # up is not waited for again until it takes an event.
        try:
            server.socket.send(frame, zmq.NOBLOCK if server.stalled else 0)
        except zmq.Again:
            server.stalled = True
            self._send_drops.report('%s is not taking events (its queue is full): %s dropped'
                                    % (server.address, _describe(event_name)))
            return False
        server.stalled = False
        return True

    def _secure_sender(self, socket, server_key):
        secret = self._setting('event_curve_secret_key')
        if not secret:
            if server_key:
                raise ValueError('a CURVE server key needs event_curve_secret_key too')
            return
        secret = _load_secret(secret)
        server_key = server_key or self._setting('event_curve_server_key')
        socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret))
        socket.setsockopt(zmq.CURVE_SERVERKEY, load_curve_key(server_key) if server_key
                          else zmq.curve_public(secret))

    # -- handlers ------------------------------------------------------------------

    def register_handler(self, event_name, event_handler, run_on_main_loop=False,
                         request_handler=None, persist=False):
        """Call ``event_handler(args)`` when an event named ``event_name`` arrives.

        The handler runs once and is removed, unless ``persist`` is true.  It
        runs on the listener thread, or with ``run_on_main_loop`` on the
        manager's IOLoop (needed to write to a request).  Once
        ``request_handler`` has finished, the handler is skipped.  Returns
        the signature :meth:`remove_handler` takes:
        ``(event_name, (event_handler, run_on_main_loop, request_handler,
        persist))``.
        """
        handler = (event_handler, run_on_main_loop, request_handler, persist)
        if run_on_main_loop and self.io_loop is None:
            if isinstance(threading.current_thread(), Listener):
                # IOLoop.current() here would be a loop nobody runs.
                raise RuntimeError('the manager has no io_loop for run_on_main_loop '
                                   'handlers: set EventManager.io_loop first')
            with self._lock:
                if self.io_loop is None:
                    # Called on the loop's thread, before the loop runs (a
                    # server setting events up) or while it runs (a request
                    # handler): the loop 1.0.12's IOLoop.instance() meant.
                    self.io_loop = IOLoop.current()
        with self._handlers_lock:
            self._handlers.setdefault(event_name, set()).add(handler)
        return (event_name, handler)

    def remove_handler(self, handler_sig):
        """Remove the handler :meth:`register_handler` returned ``handler_sig`` for.

        A handler that already ran (or was removed) is ignored.
        """
        event_name, handler = handler_sig
        with self._handlers_lock:
            handlers = self._handlers.get(event_name)
            if handlers is not None:
                handlers.discard(handler)

    def _dispatch(self, event_name, event_args):
        with self._handlers_lock:
            handlers = self._handlers.get(event_name)
            if not handlers:
                return
            chosen = list(handlers)
            for handler in chosen:
                if not handler[3]:
                    handlers.discard(handler)
        for handler in chosen:
            try:
                if _finished(handler[2]):
                    continue
                if handler[1]:
                    self._call_on_main_loop(event_name, handler, event_args)
                else:
                    handler[0](event_args)
            except Exception:
                logger.exception('handler of event %s failed', _describe(event_name))

    def _call_on_main_loop(self, event_name, handler, event_args):
        self.io_loop.add_callback(_run_handler, event_name, handler, event_args)

    # -- listening -----------------------------------------------------------------

    def start_listening(self):
        """Bind ``address`` and start the listener thread (once; later calls do nothing).

        Called on a thread whose IOLoop is running, that loop becomes the
        manager's ``io_loop`` unless one is set.  Raises the bind error (e.g.
        the address is in use) in the caller.
        """
        with self._lock:
            if self._listener is not None:
                return
            if not self.address:
                raise ValueError('EventManager.address is not set: nowhere to listen')
            if self.io_loop is None:
                self.io_loop = _running_io_loop()
            serialization = _check_serialization(self._setting('event_serialization'))
            max_size = self._setting('event_max_size')
            secret = self._setting('event_curve_secret_key')
            secret = _load_secret(secret) if secret else None
            authorized = self._setting('event_curve_authorized_keys')
            if authorized and secret is None:
                raise ValueError('event_curve_authorized_keys needs event_curve_secret_key: '
                                 'without it the listener would accept anyone in plaintext')
            _warn_if_exposed(self.address, serialization, secret,
                             self._setting('event_pickle_globals'))
            reader = EventReader(serialization, self._setting('event_pickle_globals'),
                                  max_size)
            if self._closed:
                raise RuntimeError('this EventManager is closed')
            # The listener has a context of its own (as in 1.0.12), ended when
            # it stops: terminating it waits until libzmq has closed the
            # socket, so the address is free once stop_listening() returns.
            context = zmq.Context()
            if secret is not None:
                self._authenticator = start_authenticator(context, secret, authorized)
            listener = Listener(context, self.address, reader, secret, self._dispatch)
            try:
                listener.start_and_wait()
            except Exception:
                self._stop_authenticator()
                context.term()
                raise
            self._listener = listener
            self._listener_context = context

    def stop_listening(self, timeout=5.0):
        """Stop the listener thread and unbind; returns whether it ended within ``timeout``.

        :meth:`start_listening` may be called again afterwards.
        """
        with self._lock:
            listener, self._listener = self._listener, None
            context, self._listener_context = self._listener_context, None
        stopped = True
        if listener is not None:
            stopped = listener.stop(timeout)
        with self._lock:
            self._stop_authenticator()
        if context is not None and stopped:
            # The listener closed its socket (linger 0): this returns once
            # libzmq has let go of the address.
            context.term()
        return stopped

    @property
    def listening(self):
        """Whether the listener thread is running."""
        listener = self._listener
        return listener is not None and listener.is_alive()

    def close(self, timeout=5.0):
        """Stop listening, drop every server and release the ZeroMQ context.

        Events still queued get up to a second to leave.  The manager cannot
        be used afterwards; if it was :meth:`instance`, the next call makes
        a new one.
        """
        self.stop_listening(timeout)
        with self._lock:
            self.remove_all_servers()
            self._closed = True
            context, self._context = self._context, None
        if context is not None:
            context.term()
        with _instance_lock:
            if type(self).__dict__.get('_instance') is self:
                del type(self)._instance

    def _stop_authenticator(self):
        authenticator, self._authenticator = self._authenticator, None
        if authenticator is not None:
            authenticator.stop()

    def _get_context(self):
        # Made on first use, so a manager made before the process forks
        # does not share a context with its children.
        if self._closed:
            raise RuntimeError('this EventManager is closed')
        if self._context is None:
            self._context = zmq.Context()
        return self._context

    def _setting(self, name):
        value = self._settings[name]
        if value is None:
            value = getattr(options, name)
        return value


# -- private helpers ---------------------------------------------------------------

class _Server(object):
    """A registered server: its address, its PUSH socket and whether its queue was full."""

    __slots__ = ('address', 'socket', 'stalled')

    def __init__(self, address, socket):
        self.address = address
        self.socket = socket
        self.stalled = False


def _run_handler(event_name, handler, event_args):
    # On the main loop: the request may have finished since the event came in.
    try:
        if not _finished(handler[2]):
            handler[0](event_args)
    except Exception:
        logger.exception('handler of event %s failed', _describe(event_name))


def _running_io_loop():
    """The IOLoop running on this thread, or None (never makes one)."""
    if six.PY3:
        import asyncio
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return IOLoop.current()
    # Tornado 5 on Python 2: the loop made current here (by start() or
    # make_current()); instance=False never creates one.
    return IOLoop.current(instance=False)


def _finished(request_handler):
    return bool(request_handler is not None and getattr(request_handler, '_finished', False))


def _load_secret(value):
    if not zmq.has('curve'):
        raise ValueError('event_curve_secret_key is set but this libzmq has no CURVE support')
    return load_curve_key(value, secret=True)


def _check_serialization(value):
    if value not in ('pickle', 'json'):
        raise ValueError("event_serialization is 'pickle' or 'json', not %r" % (value,))
    return value


_warned_exposed = set()  # type: set[str]


def _warn_if_exposed(address, serialization, secret, pickle_globals):
    host = zmq_bind_host(address)
    if host is None or is_loopback(host) or secret is not None or address in _warned_exposed:
        return
    _warned_exposed.add(address)
    if '*' in split_names(pickle_globals) and serialization == 'pickle':
        risk = 'run code in this process (event_pickle_globals=*)'
    else:
        risk = 'send it events'
    logger.warning('the event listener on %s has no authentication: anyone who can reach '
                   'it can %s. Bind --event_bind_host=127.0.0.1 or set '
                   '--event_curve_secret_key.', address, risk)


def _connect_host(bind_host):
    """Where processes on this machine reach a listener bound on ``bind_host``."""
    host = (bind_host or '*').strip('[]')
    if host in ('*', '0.0.0.0'):
        return '127.0.0.1'
    if host == '::':
        return '::1'
    return host


def _init_module(value):
    """The module of ``event_init_module``: given, or imported by name.

    Toto 1.0.12 called ``__import__(name).invoke``, i.e. the top package's
    ``invoke`` for a dotted name; that is still done (with a warning) when
    the named module itself has no ``invoke``.
    """
    if not value:
        return None
    if not isinstance(value, six.string_types):
        return value
    module = importlib.import_module(value)
    if callable(getattr(module, 'invoke', None)):
        return module
    top = sys.modules.get(value.split('.')[0])
    if top is not module and callable(getattr(top, 'invoke', None)):
        logger.warning('event_init_module %s has no invoke(); calling %s.invoke() as '
                       'Toto 1.0.12 did', value, top.__name__)
        return top
    raise AttributeError('event_init_module %s has no invoke(event_manager) function' % value)


def _describe(event_name):
    return shortened(repr(event_name))

