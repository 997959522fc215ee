"""One worker process of a ZeroMQ worker service: :class:`TotoWorker`.

A worker process connects a socket to the service's router (a ``REP``
socket with ``--dispatch=queue``, a ``DEALER`` that says how many calls it
takes with ``--dispatch=balanced``), runs each call's method from the method
package and sends the answer back. :class:`toto.worker.TotoWorkerService`
starts these processes; a worker can also run on its own, connected to a
router elsewhere::

    from toto.worker import TotoWorker

    worker = TotoWorker('methods', 'tcp://127.0.0.1:55556', dispatch='balanced')
    worker.start()   # serves until stop() or a shutdown command

:mod:`toto.worker` is the public face; this module holds the process's own
concern: its socket, its calls and its control subscription.
"""

from __future__ import absolute_import, division, print_function

import functools
import importlib
import json
import logging
import os
import time

import six
import zmq
from tornado import gen
from tornado.ioloop import IOLoop

from toto import _metrics
from toto import _worker_options  # noqa: F401 - defines the service's options
from toto._codec import MessageCodec
from toto._methods import error_info, find_method, flush_error_log, is_awaitable, run_detached
from toto._protocol import (CONTROL_PREFIX, HEARTBEAT_INTERVAL, PROBE, RELEASED, STATUS,
                            WORKER_HELLO, WORKER_WINDOW, check_dispatch, check_method_concurrency,
                            worker_state)
from toto._saturation import SaturationLog
from toto._security import PeerOwnerCheck, check_socket_path
from toto.exceptions import ERROR_SERVER, TotoException

# The service's logger: a worker process's lines are the service's.
logger = logging.getLogger('toto.worker')

# How long a worker process that left gracefully waits for its last answers
# to leave.
_LEAVING_LINGER = 5.0
# After refusing another user's process at the worker socket's path: how
# long before connecting again, and how often the refusal is logged.
_REFUSED_RETRY = 1.0
_REFUSAL_LOG_INTERVAL = 60.0
# Plain ints: pyzmq's enum flags make every use cost more on the busy path.
_SNDMORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class TotoWorker(object):
    """One worker process: it runs the calls the router sends it.

    ``method_module`` is a module object or name.  Calls are
    ``[message_id, payload]``; the answer is ``[message_id, payload]``, or
    ``[message_id]`` alone for an :func:`~toto.invocation.asynchronous`
    method, sent before the method runs.  Nothing a method raises and nothing
    a client sends stops the worker: failures become error answers.

    ``dispatch`` is the protocol spoken with the router (see
    :func:`~toto.worker.run_router`).  ``'queue'`` (the default here, as in the original
    package) is a ``REP`` socket: a method that returns a Future or a
    coroutine is awaited before the next call is taken.  ``'balanced'`` is a
    ``DEALER`` that tells the router how much it can take: up to
    ``method_concurrency`` coroutine methods run side by side, and plain
    methods one at a time.  :class:`~toto.worker.TotoWorkerService` uses ``--dispatch``,
    whose default is ``'balanced'``.
    """

    def __init__(self, method_module, socket_address, db_connection=None, compression=None,
                 serialization=None, control_socket_address=None, debug=False,
                 max_message_size=None, saturation_warning_after=5.0, dispatch='queue',
                 method_concurrency=100):
        check_dispatch(dispatch)
        check_method_concurrency(method_concurrency)
        self.dispatch = dispatch
        self.method_concurrency = method_concurrency
        if isinstance(method_module, six.string_types):
            method_module = importlib.import_module(method_module)
        self.method_module = method_module
        self.socket_address = socket_address
        self.control_socket_address = control_socket_address
        self.debug = debug
        self.max_message_size = max_message_size
        #: The service's database connection (``--database``), and its
        #: driver's own handle (a pymongo database, a Redis client...).
        self.db_connection = db_connection
        self.db = getattr(db_connection, 'db', None) if db_connection is not None else None
        #: ``Initialized``, ``Listening``, ``Working`` or ``Finished``, as in 1.0.12.
        self.status = 'Initialized'
        #: True while the worker serves calls.
        self.running = False
        self.calls_answered = 0
        #: Error answers given (and asynchronous methods' work that failed).
        self.errors = 0
        #: The name of the last call that found its method.
        self.last_method = None
        self.started = time.time()
        self._saturation = SaturationLog(
            saturation_warning_after, 'worker pid %d' % os.getpid())
        codec = MessageCodec(compression, serialization, max_size=max_message_size)
        # As in 1.0.12, a startup function may replace any of these four to
        # change how this worker reads calls and writes answers.
        self.compress = codec.compress
        self.decompress = codec.decompress
        self.dumps = codec.serialize
        self.loads = codec.deserialize
        self.context = zmq.Context()
        self._socket = None
        self._socket_fd = None
        # Set for an ipc:// worker socket: checks whom each connection reaches.
        self._peers = None
        self._reconnecting = None
        self._refusals = 0
        self._refusal_logged = None
        self._control = None
        self._io_loop = None
        # The message id of a call whose coroutine method is still running:
        # its answer must go out before the REP socket takes another call.
        self._in_hand = None
        # Balanced dispatch: calls finished so far, coroutines running, and
        # how many unfinished calls the router may send at once.
        self._finished = 0
        self._running = 0
        self._window = min(max(method_concurrency, WORKER_WINDOW), 0xFFFF)
        self._check_scheduled = False
        self._heartbeat = None
        # Leaving (a shutdown or reload command): no new calls are taken,
        # and the process ends once the router has said no more will come
        # (balanced) and every call in hand is answered.
        self._leaving = False
        self._released = False
        self._left_gracefully = False
        # Set when the service serves metrics (--metrics_port), else None.
        self._metrics = _metrics.for_worker()

    def error_info(self, error):
        """The error answer for ``error`` (see :func:`error_info`)."""
        self.errors += 1
        return error_info(error, self.debug)

    def log_status(self):
        """Log this process's pid, :attr:`status` and how many calls it answered."""
        logger.info('worker pid %d: %s, %d calls answered', os.getpid(), self.status,
                    self.calls_answered)

    def status_document(self):
        """What this process is doing, as a dict of plain values (``--command=status``)."""
        return {'pid': os.getpid(), 'state': 'leaving' if self._leaving else 'serving',
                'answered': self.calls_answered, 'errors': self.errors,
                'in_hand': self._calls_in_hand(), 'uptime': time.time() - self.started,
                'last_method': self.last_method}

    def _calls_in_hand(self):
        # Balanced: coroutines and asynchronous work running; queue: the one
        # coroutine whose answer the REP socket waits for.
        return self._running + int(self._in_hand is not None)

    def start(self):
        """Serve calls until a ``shutdown`` command or the process is stopped."""
        # Never take calls or commands from a socket another user put there.
        check_socket_path(self.socket_address, binding=False)
        if self.control_socket_address:
            check_socket_path(self.control_socket_address, binding=False)
        self._io_loop = IOLoop(make_current=False)
        balanced = self.dispatch == 'balanced'
        self._open_socket()
        if balanced:
            self._beat()
        if self.control_socket_address:
            # The service binds the control socket; a worker says who it is,
            # and the service sends it the commands it is given.
            self._control = self.context.socket(zmq.DEALER)
            self._control.setsockopt(zmq.LINGER, 0)
            self._control.connect(self.control_socket_address)
            self._control.send_multipart([WORKER_HELLO, str(os.getpid()).encode('ascii')])
            self._io_loop.add_handler(self._control.getsockopt(zmq.FD),
                                      self._on_control_event, IOLoop.READ)
            self._io_loop.add_callback(self._on_control_event, None, None)
        logger.debug('worker pid %d serving %s', os.getpid(), self.socket_address)
        self.running = True
        self.status = 'Listening'
        try:
            self._io_loop.start()
        finally:
            self.running = False
            self.status = 'Finished'
            self._close()

    def stop(self):
        """Stop serving (thread-safe)."""
        if self._io_loop is not None:
            self._io_loop.add_callback(self._io_loop.stop)

    def _open_socket(self):
        """Connect a new worker socket to the router and serve it."""
        balanced = self.dispatch == 'balanced'
        socket = self.context.socket(zmq.DEALER if balanced else zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        # A REP socket drops an answer its outgoing queue has no room for:
        # never let it (docs/protocol.rst, "No silent drops").
        socket.setsockopt(zmq.SNDHWM, 0)
        if self.max_message_size and self.max_message_size > 0:
            socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_size)
        if self.socket_address.startswith('ipc://'):
            # ZeroMQ connects again by itself after the router goes, to
            # whatever is bound at the path then: each connection is checked.
            self._peers = PeerOwnerCheck(socket, self.socket_address)
        socket.connect(self.socket_address)
        self._socket = socket
        self._socket_fd = socket.getsockopt(zmq.FD)
        handler = self._on_balanced_event if balanced else self._on_call_event
        self._io_loop.add_handler(self._socket_fd, handler, IOLoop.READ)
        if self._peers is not None:
            self._io_loop.add_handler(self._peers.fd, self._on_peer_event, IOLoop.READ)
            self._io_loop.add_callback(self._on_peer_event, None, None)
        # Calls may already be waiting: the descriptor only signals changes.
        self._io_loop.add_callback(handler, None, None)

    def _close_socket(self, linger=0):
        if self._socket_fd is not None:
            self._io_loop.remove_handler(self._socket_fd)
            self._socket_fd = None
        if self._peers is not None:
            self._io_loop.remove_handler(self._peers.fd)
            self._peers.close()
            self._peers = None
        if self._socket is not None:
            self._socket.close(linger)

    def _on_peer_event(self, fd, events):
        if self._peers is not None:
            self._trusted()

    def _trusted(self):
        """Whether the worker socket's connections all reach this user's processes.

        If one does not, the socket is closed with whatever it holds, unread
        (it may come from that process), and a new one connects later, once
        the path is this user's again.  Calls the router had sent and not yet
        answered are lost with it: that router has gone.
        """
        peers = self._peers
        if peers is None:
            return not self._socket.closed
        refusal = peers.refusal()
        if refusal is None:
            return True
        self._refusals += 1
        self._log_refusal('refused a connection of the worker socket: %s; dropped it with '
                          'everything it held' % refusal)
        self._close_socket()
        if self._in_hand is not None:
            # The coroutine's answer has nowhere to go: the next socket is a
            # new REP socket, which must take a call before it answers.
            self._in_hand = None
        self._reconnect_later()
        return False

    def _log_refusal(self, text):
        now = time.time()
        if self._refusal_logged is not None and \
                now - self._refusal_logged < _REFUSAL_LOG_INTERVAL:
            return
        self._refusal_logged = now
        logger.error('worker pid %d: %s (refused %d time%s so far; connecting again every '
                     '%g s once the path is this user\'s)', os.getpid(), text, self._refusals,
                     '' if self._refusals == 1 else 's', _REFUSED_RETRY)

    def _reconnect_later(self):
        if self._reconnecting is None:
            self._reconnecting = self._io_loop.call_later(_REFUSED_RETRY, self._reconnect)

    def _reconnect(self):
        self._reconnecting = None
        if not self._socket.closed:
            return
        if self._leaving:
            # No router will send more, nor say so: leave once what runs is done.
            self._released = True
            self._end_if_done()
            return
        try:
            check_socket_path(self.socket_address, binding=False)
        except ValueError as error:
            self._log_refusal('not connecting to %s: %s' % (self.socket_address, error))
            self._reconnect_later()
            return
        logger.info('worker pid %d: connecting to %s again', os.getpid(), self.socket_address)
        self._open_socket()
        if self.dispatch == 'balanced':
            self._send_state()

    def _close(self):
        if self._heartbeat is not None:
            self._io_loop.remove_timeout(self._heartbeat)
        if self._reconnecting is not None:
            self._io_loop.remove_timeout(self._reconnecting)
        if self._control is not None:
            self._io_loop.remove_handler(self._control.getsockopt(zmq.FD))
            self._control.close(0)
        # Leaving gracefully, the last answers may still be queued.
        self._close_socket(int(_LEAVING_LINGER * 1000) if self._left_gracefully else 0)
        self._io_loop.close(all_fds=False)
        self.context.term()

    def _on_control_event(self, fd, events):
        while self._control.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            message = self._control.recv_multipart()
            if len(message) != 2 or message[0] != CONTROL_PREFIX:
                continue
            command = message[1][:32].decode('ascii', 'replace')
            if command == 'shutdown':
                self._leave()
            elif command == 'status':
                self.log_status()
                try:
                    self._control.send_multipart(
                        [STATUS, json.dumps(self.status_document()).encode('utf-8')],
                        zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the service has gone
            else:
                logger.warning('worker pid %d: unknown command %r', os.getpid(), command)

    def _leave(self):
        """Take no more calls; end once the calls in hand are answered."""
        if self._leaving:
            return
        self._leaving = True
        logger.info('worker pid %d: leaving: answering the %d calls in hand first',
                    os.getpid(), self._calls_in_hand())
        if self.dispatch == 'balanced' and not self._socket.closed:
            # Room for no calls: the router sends no more, and says so.
            self._window = 0
            self._send_state()
        else:
            self._released = True
            self._end_if_done()

    def _end_if_done(self):
        if self._released and self._leaving and not self._calls_in_hand():
            logger.info('worker pid %d: every call answered (%d in all): leaving',
                        os.getpid(), self.calls_answered)
            self._left_gracefully = True
            self._io_loop.stop()

    def _on_call_event(self, fd, events):
        # Sending a reply may swallow the descriptor's next signal, so loop
        # on the socket state until no call is waiting.  Every call after
        # the first of a pass was queued while this process was busy.
        if self._in_hand is not None or self._leaving:
            return  # resumed once the coroutine in hand has its answer out
        socket = self._socket
        saturation = self._saturation
        saturation.start(self.calls_answered)
        while not socket.closed and socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            saturation.check(self.calls_answered)
            frames = socket.recv_multipart()
            if self._peers is not None and not self._trusted():
                break  # what was read may come from another user's process
            after_reply = running = None
            try:
                reply, after_reply, running = self._handle(frames)
            except Exception as error:  # a bug here must not stop the worker
                logger.exception('worker failed to handle a call')
                reply = [frames[0] if frames else b'',
                         self._encode_response({'error': self.error_info(error)})]
            if running is not None:
                self._in_hand = reply[0]
                self._io_loop.add_future(running, functools.partial(
                    self._on_awaited, socket, reply[0]))
                break
            socket.send_multipart(reply)
            self.calls_answered += 1
            if after_reply is not None:
                self._run_detached(after_reply)
        saturation.stop(self.calls_answered)

    # -- balanced dispatch: a DEALER that tells the router what it can take --

    def _beat(self):
        # Not a PeriodicCallback: that starts on IOLoop.current(), and this
        # loop is never made current.
        self._send_state()
        # Error lines left out of the log (a flood of bad calls) are counted
        # there once their interval is over, even when the flood has stopped.
        flush_error_log()
        self._heartbeat = self._io_loop.call_later(HEARTBEAT_INTERVAL, self._beat)

    def _send_state(self, envelope=b'', *payload):
        # Every message says how many calls this worker has finished and how
        # many unfinished ones it accepts; an answer's envelope and payload
        # follow.
        if self._socket.closed:
            return
        head = worker_state(self._finished, self._window) + envelope
        if payload:
            self._socket.send(head, _SNDMORE)
            self._socket.send(payload[0])
        else:
            self._socket.send(head)
        if not self._check_scheduled:
            # The descriptor only signals changes, and a send can swallow the
            # signal that a call arrived: look at the socket again.
            self._check_scheduled = True
            self._io_loop.add_callback(self._on_balanced_event, None, None)

    def _on_balanced_event(self, fd, events):
        self._check_scheduled = False
        socket = self._socket
        # The router logs saturation: here calls queue only up to the window.
        while (not socket.closed and self._running < self.method_concurrency
               and socket.getsockopt(_EVENTS) & _POLLIN):
            frames = socket.recv_multipart()
            if self._peers is not None and not self._trusted():
                break  # what was read may come from another user's process
            if len(frames) == 1 and frames[0] == RELEASED:
                # Leaving: every call the router sent came before this.
                self._released = True
                self._end_if_done()
                continue
            if len(frames) == 1 and frames[0] == PROBE:
                continue  # the router checking that this connection is open
            if len(frames) != 2:
                # Counted as finished all the same, or the router would keep
                # a place for it in this worker's window for good.
                self._finished += 1
                logger.warning('worker pid %d: dropped a message of %d frames from the '
                               'router (a --dispatch=queue router?)', os.getpid(), len(frames))
                self._send_state()
                continue
            # The router's envelope stands in for the message id: it comes
            # back with the answer as it came.
            after_reply = running = None
            try:
                reply, after_reply, running = self._handle(frames)
            except Exception as error:  # a bug here must not stop the worker
                logger.exception('worker failed to handle a call')
                reply = [frames[0], self._encode_response({'error': self.error_info(error)})]
            if running is not None:
                self._running += 1
                self._io_loop.add_future(running, functools.partial(
                    self._on_awaited_balanced, reply[0]))
                continue
            if after_reply is None:
                self._finished += 1
                self._send_state(*reply)
                self.calls_answered += 1
                continue
            # Asynchronous: acknowledged first; the call stays unfinished, in
            # the router's eyes too, until its work is over.
            self._send_state(*reply)
            self.calls_answered += 1
            if self._run_detached(after_reply, self._on_detached_done):
                self._running += 1
            else:
                self._finished += 1
                self._send_state()

    def _on_awaited_balanced(self, envelope, running):
        self._running -= 1
        self._finished += 1
        try:
            response = running.result()
        except BaseException as error:  # a cancelled Future raises no Exception
            response = {'error': self.error_info(error)}
        self._send_state(envelope, self._encode_response(response))
        self.calls_answered += 1
        if self._leaving:
            self._end_if_done()

    def _on_detached_done(self):
        self._running -= 1
        self._finished += 1
        self._send_state()
        if self._leaving:
            self._end_if_done()

    def _on_awaited(self, socket, message_id, running):
        try:
            response = running.result()
        except BaseException as error:  # a cancelled Future raises no Exception
            # The REP socket must answer whatever happened, or take no call again.
            response = {'error': self.error_info(error)}
        if socket is not self._socket or socket.closed:
            return  # the call came on a socket dropped since
        self._in_hand = None
        self._socket.send_multipart([message_id, self._encode_response(response)])
        self.calls_answered += 1
        if self._leaving:
            self._end_if_done()
            return
        self._on_call_event(None, None)  # calls that queued meanwhile

    def _run_detached(self, run, on_done=None):
        return run_detached(run, self._io_loop, self.error_info, on_done)

    def _handle(self, frames):
        """Return the reply frames for a call; for an asynchronous method, the
        function to run once the acknowledgement is sent; for a coroutine
        method, the Future of its result (the reply then holds only the id)."""
        message_id = frames[0]
        if len(frames) != 2:
            error = TotoException(ERROR_SERVER, 'malformed call: %d frames' % len(frames))
            reply = [message_id, self._encode_response({'error': self.error_info(error)})]
            if self._metrics is not None:
                self._metrics.rejected()
            return reply, None, None
        method = None
        try:
            message = self.loads(self.decompress(frames[1]))
            found = find_method(self.method_module, message['method'])
            method = found.invoke
            self.last_method = message['method']
            if self._metrics is not None:
                # Labelled with the method's own name: one call may spell it many ways.
                method = self._metrics.timed(
                    _metrics.method_label(self.method_module, found), method)
            parameters = message.get('parameters', {})
            self.status = 'Working'
            if getattr(method, 'asynchronous', False):
                return [message_id], functools.partial(method, self, parameters), None
            response = method(self, parameters)
            if is_awaitable(response):
                return [message_id], None, gen.convert_yielded(response)
        except Exception as error:
            if method is None and self._metrics is not None:
                self._metrics.rejected()
            response = {'error': self.error_info(error)}
        finally:
            self.status = 'Listening'
        return [message_id, self._encode_response(response)], None, None

    def _encode_response(self, response):
        try:
            return self.compress(self.dumps(response))
        except Exception as error:
            return self.compress(self.dumps({'error': self.error_info(error)}))

