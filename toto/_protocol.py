"""The frames and constants that clients, the router and worker processes agree on.

Everything that crosses a socket between two parts of this package, other
than the original package's own call frames, is named here, so that each
side reads the same definition: the state frame a balanced worker sends
with every message, the one-frame notices of the router, the drain notice
and its answers, and the control channel's message kinds::

    from toto import _protocol

    head = _protocol.worker_state(finished=12, window=64)
    socket.send_multipart([head])                 # a ready worker's heartbeat
    socket.send_multipart([_protocol.CONTROL_PREFIX, b'status'])

``docs/protocol.rst`` describes the messages in full; :mod:`toto._dispatch`
describes how the router uses them.  Nothing here imports another module of
this package: every other layer may import this one.
"""

from __future__ import absolute_import, division, print_function

import struct

import six
import zmq

# -- balanced dispatch: router <-> worker processes ---------------------------------------

#: The version byte that starts every worker's state frame.
PROTOCOL_VERSION = 1
#: How often an idle worker says it is still there, in seconds.
HEARTBEAT_INTERVAL = 1.0
#: Unfinished calls a worker process accepts at once (at least its
#: --method_concurrency).  Calls beyond the first wait in the worker only
#: while every worker has as many: they keep a busy worker from idling
#: between an answer and the router's next call.
WORKER_WINDOW = 64
#: The router's one-frame message to a worker that said it accepts no more
#: calls: nothing more will come.
RELEASED = b'released'
#: The router's one-frame message to a silent worker, which ignores it: a
#: send that fails tells the router the worker's connection has closed.
PROBE = b'probe'

#: The state frame: version (1 byte), calls finished (8), window (2).
STATE = struct.Struct('>BQH')
STATE_SIZE = STATE.size
#: The window travels in the 16 bits of the state frame.
MAX_METHOD_CONCURRENCY = 0xFFFF

#: ``balanced``: the router sends a call only to a worker with room for it;
#: ``queue``: the original protocol (a queue device and ``REP`` workers).
DISPATCH_MODES = ('balanced', 'queue')

# -- draining: router <-> clients ------------------------------------------------------

#: The message id of the router's "draining" notice and of a client's
#: answer to it: not a uuid, so no call has it.
DRAINING_ID = b'toto:draining'
#: The payload of a client's last answer to the notice: it has read the
#: answers to every call it sent on that connection.
DRAIN_DONE = b'done'

# -- the service's control channel -----------------------------------------------------

#: The commands a service takes on its control socket.
CONTROL_COMMANDS = ('status', 'shutdown', 'reload')
#: The first frame of a command; the second is the command's name.
CONTROL_PREFIX = b'command'
#: A status document (JSON) follows this frame, from a process or the service.
STATUS = b'status'
#: The router's first message on the control socket, with its pid.
ROUTER_HELLO = b'router'
#: A worker process's first message on the control socket, with its pid.
WORKER_HELLO = b'worker'
#: The service's answers to a command: how many worker processes it
#: reached, or why it would not do it.
CONTROL_SENT = b'sent'
CONTROL_REFUSED = b'refused'

# Plain ints: with pyzmq's enum flags, send_multipart's flag arithmetic
# costs more than the sends themselves.
_SNDMORE = int(zmq.SNDMORE)


def worker_state(finished, window):
    """The state frame a worker sends: calls finished so far, and its window."""
    return STATE.pack(PROTOCOL_VERSION, finished, window)


def send_frames(socket, frames):
    """``socket.send_multipart(frames)``, faster on a busy path."""
    for frame in frames[:-1]:
        socket.send(frame, _SNDMORE)
    socket.send(frames[-1])


def check_dispatch(dispatch):
    """Raise ValueError unless ``dispatch`` is one of :data:`DISPATCH_MODES`."""
    if dispatch not in DISPATCH_MODES:
        raise ValueError('dispatch must be one of %s, not %r'
                         % (', '.join(DISPATCH_MODES), dispatch))


def check_method_concurrency(method_concurrency):
    """Raise ValueError unless the window fits the state frame (1 to 65535)."""
    if (not isinstance(method_concurrency, six.integer_types) or
            not 1 <= method_concurrency <= MAX_METHOD_CONCURRENCY):
        raise ValueError('method_concurrency must be a whole number from 1 to %d, not %r'
                         % (MAX_METHOD_CONCURRENCY, method_concurrency))
