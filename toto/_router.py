"""The worker service's router process: clients in front, worker processes behind.

:func:`run_router` binds the clients' ``ROUTER`` on ``--worker_bind_address``
and the worker processes' socket on ``--worker_socket_address``, then moves
calls between them until it is stopped: with balanced dispatch through a
:class:`toto._dispatch.LoadBalancer`, with ``queue`` dispatch through a
plain queue device, as the original package did.  The service starts it in
a process of its own::

    router = start_router_process('tcp://127.0.0.1:55555',
                                  'ipc:///run/toto/workerservice.sock',
                                  dispatch='balanced')
"""

from __future__ import absolute_import, division, print_function

import logging
import multiprocessing
import os

import zmq
from tornado.options import options

from toto import _dispatch
from toto._codec import MessageCodec
from toto._methods import error_text
from toto._protocol import ROUTER_HELLO, check_dispatch
from toto._security import bind_private, check_socket_path, load_curve_key
from toto.options import safe_define

try:
    import resource
except ImportError:  # not a Unix
    resource = None

logger = logging.getLogger('toto.worker.router')

# How long a drained router waits for its last answers to leave.
_DRAINED_LINGER = 5.0
# How long the service waits for its router process to bind.
_ROUTER_START_WAIT = 10.0

#: Descriptors the router keeps for itself (worker processes' connections,
#: the control socket, a reload's new processes) and for a burst of client
#: connections it has not closed yet: at least this many, and an eighth of
#: its file limit.
FD_RESERVE = 64
#: Fewest client connections the router accepts, however low its file limit.
MIN_CLIENTS = 16
#: Messages libzmq queues from one client while the router does not read
#: (every worker busy and the held calls at their budget); then the client's
#: own queue fills, and its sends wait.
FRONTEND_RCVHWM = 100
#: A peer that has not finished ZeroMQ's handshake within this many
#: milliseconds is disconnected.
HANDSHAKE_IVL = 10000
# TCP keepalive on client connections: a peer that has vanished (no FIN,
# no RST) is found out after about 60 + 3 * 10 s.  Unlike ZeroMQ heartbeats,
# which libzmq 4.1 peers (the original package's pyzmq) do not answer, it
# never drops a live peer that waits long for its answer.
_KEEPALIVE = ((zmq.TCP_KEEPALIVE, 1), (zmq.TCP_KEEPALIVE_IDLE, 60),
              (zmq.TCP_KEEPALIVE_INTVL, 10), (zmq.TCP_KEEPALIVE_CNT, 3))

_OPTION_GROUP = 'worker service'
safe_define('max_clients', default=0, type=int, group=_OPTION_GROUP, metavar='N',
            help='Most client connections the router keeps open (balanced dispatch): '
                 'past it, it closes those that went longest without a call. 0: as '
                 'many as its file limit leaves room for (it raises its soft limit '
                 'to the hard one); more than that is lowered to it')
safe_define('max_held_bytes', default=_dispatch.MAX_HELD_BYTES, type=int,
            group=_OPTION_GROUP, metavar='BYTES',
            help='Bytes of calls the router holds while every worker process is busy '
                 '(balanced dispatch); past it, it reads no more calls until a worker '
                 'takes one')


def check_curve(secret_key, authorized_keys):
    """Refuse a CURVE set-up that would serve in plaintext or cannot start.

    Returns the secret key as Z85 bytes, or None without CURVE.
    """
    if authorized_keys and not secret_key:
        raise ValueError('curve_authorized_keys is set but curve_secret_key is not: '
                         'without a secret key the service would answer anyone in '
                         'plaintext. Set curve_secret_key too, or drop '
                         'curve_authorized_keys')
    if not secret_key:
        return None
    if not zmq.has('curve'):
        raise ValueError('curve_secret_key is set but this libzmq has no CURVE support')
    if authorized_keys and not os.path.isdir(authorized_keys):
        raise ValueError('curve_authorized_keys must be a directory of public '
                         'certificates, not %r' % (authorized_keys,))
    return load_curve_key(secret_key, secret=True)


def raise_file_limit():
    """Raise this process's soft limit on open files to its hard limit; return the soft one.

    Returns None where there are no such limits.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is not a value the soft one may take on Linux.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # not allowed here: keep the soft limit
    return soft


def client_cap(max_clients, file_limit, open_now):
    """The most client connections a router keeps open.

    ``file_limit`` less the descriptors open now and a reserve
    (:data:`FD_RESERVE`, or an eighth of the limit if more) is what clients
    may have; a larger ``max_clients`` is lowered to it, 0 or less means all
    of it.  None when there is no file limit and no ``max_clients``.
    """
    if file_limit is None or file_limit == getattr(resource, 'RLIM_INFINITY', -1):
        return max_clients if max_clients and max_clients > 0 else None
    room = max(file_limit - open_now - max(FD_RESERVE, file_limit // 8), MIN_CLIENTS)
    if max_clients is None or max_clients <= 0:
        return room
    if max_clients > room:
        logger.warning('router: --max_clients=%d is more than the file limit (%d) leaves '
                       'room for: keeping at most %d client connections', max_clients,
                       file_limit, room)
        return room
    return max_clients


def _open_descriptors():
    try:
        return len(os.listdir('/proc/self/fd'))
    except OSError:
        return FD_RESERVE  # not Linux: a guess


def run_router(bind_address, socket_address, max_message_size=None, curve_secret_key=None,
               curve_authorized_keys=None, on_ready=None, dispatch='queue',
               saturation_warning_after=5.0, compression=None, serialization=None,
               control_socket_address=None, max_clients=0, max_held_bytes=None):
    """Run the router: clients' ROUTER in front, the worker processes behind.

    With ``dispatch='balanced'`` (what :class:`TotoWorkerService` runs by
    default) it is a :class:`toto._dispatch.LoadBalancer`: each call goes to
    a worker with room for it, and calls that are not a call's frames or are
    larger than ``max_message_size`` in all are dropped; ``compression`` and
    ``serialization`` encode its answer to a malformed call.  With
    ``'queue'`` (the default here, as in the original package) it is a
    queue device with a ``DEALER`` behind, for ``REP`` workers.

    Blocks until the process is stopped.  With ``curve_secret_key`` the
    client side is a CURVE server: clients must know its public key, and when
    ``curve_authorized_keys`` names a directory of public certificates only
    those clients are let in.  ``max_message_size`` bytes is the largest call
    accepted; a client sending more is disconnected.  ``on_ready`` is
    called once both sockets are bound.

    With balanced dispatch and a ``control_socket_address`` (the service's
    control socket) the router takes ``status`` and ``drain`` commands
    from the service there; after a drain it returns once every call it
    took is answered.

    The router raises its soft limit on open files to the hard limit.  With
    balanced dispatch it keeps at most ``max_clients`` client connections
    open (0: as many as that limit leaves room for, see :func:`client_cap`)
    and holds at most ``max_held_bytes`` of calls (default
    :data:`toto._dispatch.MAX_HELD_BYTES`).
    """
    check_dispatch(dispatch)
    # Before any socket or thread exists, so a bad key fails fast and cleanly.
    secret = check_curve(curve_secret_key, curve_authorized_keys)
    balanced = dispatch == 'balanced'
    file_limit = raise_file_limit()
    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    backend = context.socket(zmq.ROUTER if balanced else zmq.DEALER)
    authenticator = None
    control = None
    # Answers still on their way to clients when the router has drained.
    linger = 0
    try:
        # A ROUTER drops an answer when its queue to that client is full;
        # unbounded, it holds answers until the client reads them.  Clients
        # bound what they have in flight (--worker_max_in_flight), so this
        # costs memory only for a client that stops reading.
        frontend.setsockopt(zmq.SNDHWM, 0)
        # Answers from the workers are never held back on their way out.
        backend.setsockopt(zmq.RCVHWM, 0)
        if balanced:
            # A call for a worker that has gone raises, and goes elsewhere.
            backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
            backend.setsockopt(zmq.SNDHWM, 0)
        if max_message_size and max_message_size > 0:
            # Per frame: libzmq refuses a longer frame before it reads it.  A
            # message of many frames is buffered whole before anyone can
            # look at it (see docs/security.rst).
            frontend.setsockopt(zmq.MAXMSGSIZE, max_message_size)
        # Peers that connect and never finish the handshake, or vanish, go.
        frontend.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_IVL)
        for option, value in _KEEPALIVE:
            frontend.setsockopt(option, value)
        if secret is not None:
            authenticator = _start_authenticator(context, curve_authorized_keys)
            frontend.setsockopt(zmq.CURVE_SERVER, 1)
            frontend.setsockopt(zmq.CURVE_SECRETKEY, secret)
            frontend.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret))
        if balanced and control_socket_address:
            check_socket_path(control_socket_address, binding=False)
            control = context.socket(zmq.DEALER)
            control.setsockopt(zmq.LINGER, 0)
            control.connect(control_socket_address)
            control.send_multipart([ROUTER_HELLO, str(os.getpid()).encode('ascii')])
        if balanced:
            # What a client can make libzmq queue while the router reads
            # nothing: a number of messages (libzmq has no byte limit).
            frontend.setsockopt(zmq.RCVHWM, FRONTEND_RCVHWM)
            cap = client_cap(max_clients, file_limit, _open_descriptors())
            # Made before the bind, so its monitor counts every client.
            balancer = _dispatch.LoadBalancer(
                frontend, backend, max_message_size, saturation_warning_after,
                MessageCodec(compression, serialization), control,
                max_held_bytes=max_held_bytes, max_clients=cap)
            logger.info('router: at most %s client connections (file limit %s) and %d bytes '
                        'of held calls', cap if cap is not None else 'any', file_limit,
                        balancer.max_held_bytes)
        frontend.bind(bind_address)
        bind_private(backend, socket_address)
        if on_ready is not None:
            on_ready()
        if balanced:
            balancer.run()
            linger = int(_DRAINED_LINGER * 1000)
        else:
            zmq.proxy(frontend, backend)
    finally:
        if authenticator is not None:
            authenticator.stop()
        if control is not None:
            control.close(0)
        frontend.close(linger)
        backend.close(0)
        context.term()


def _start_authenticator(context, authorized_keys):
    from zmq.auth.thread import ThreadAuthenticator
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    if authorized_keys:
        authenticator.configure_curve(domain='*', location=authorized_keys)
    else:
        import zmq.auth
        authenticator.configure_curve(domain='*', location=zmq.auth.CURVE_ALLOW_ANY)
    return authenticator


def _router_process(report, *args, **kwargs):
    import signal
    # Stopping the router is the parent's business: SIGTERM ends it at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run_router(*args, on_ready=lambda: report.send(None), **kwargs)
    except Exception as error:
        report.send('%s: %s' % (type(error).__name__, error_text(error)))
        raise


def start_router_process(*args, **kwargs):
    """Start the router in a process; raise if it cannot bind or start.

    Takes :func:`run_router`'s arguments; ``max_clients`` and
    ``max_held_bytes`` default to the options of those names.
    """
    kwargs.setdefault('max_clients', options.max_clients)
    kwargs.setdefault('max_held_bytes', options.max_held_bytes)
    parent_end, child_end = multiprocessing.Pipe(duplex=False)
    router = multiprocessing.Process(target=_router_process, name='toto-router',
                                     args=(child_end,) + args, kwargs=kwargs)
    router.daemon = True
    router.start()
    child_end.close()
    failure = 'the router process exited without binding'
    if parent_end.poll(_ROUTER_START_WAIT):
        try:
            failure = parent_end.recv()
        except EOFError:
            pass
    else:
        failure = 'the router did not bind within %.0f s' % _ROUTER_START_WAIT
    parent_end.close()
    if failure is not None:
        router.terminate()
        router.join()
        raise RuntimeError('cannot start the worker router: %s' % failure)
    return router
