"""Work done by browsers: scripts handed to connected clients, results collected.

With ``--client_side_worker_path=worker`` a TotoServer serves a websocket at
``root + worker``.  Each client that connects is a worker.  The server
queues *operations* (an id and a script, which the client runs, e.g. with
``eval`` in a Web Worker) and sends each one to an idle worker; the worker
answers with the result, and the operation's callback gets it::

    from toto.clientsideworker import ClientSideWorkerManager

    def tally(worker, result):
        logging.info('a browser counted %s', result)

    # on the IOLoop's thread, e.g. in a method or the startup function
    ClientSideWorkerManager.instance().add_operation(
        'count-1', 'return 6 * 7;', callback_method=tally, max_nodes=3)

Messages, JSON text both ways:

* to a worker: ``{"operation_id": id, "script": "..."}``;
* from a worker: ``{"operation_id": id, "result": value}``, for the
  operation it was given; the worker is then idle again;
* a message that is not such an answer gets ``{"error": {"code": 1000,
  "value": "..."}}`` back, and the socket stays open.

``max_nodes`` sends an operation to up to that many workers (at least
one, even before any is connected); ``continuous`` puts it back in the
queue each time it is sent, so idle workers keep running it.  An operation
whose worker disconnects before answering goes back to the front of the
queue (1.0.12 lost it, and its manager broke on the next operation once a
worker had left).  The manager is not thread-safe: use it on the IOLoop's
thread (``IOLoop.add_callback`` from others).

Toto 1.0.12 defined this module, but its server crashed (NameError) when
``client_side_worker_path`` was set.
"""

from __future__ import absolute_import, division, print_function

import collections
import json
import logging
import threading

from tornado.options import options
from tornado.websocket import WebSocketClosedError, WebSocketHandler

import toto._server_options  # noqa: F401 - defines the socket options
from toto._eventwire import split_names
from toto._methods import error_info
from toto._security import shortened
from toto.exceptions import ERROR_SERVER, TotoException

logger = logging.getLogger('toto.clientsideworker')

_instance_lock = threading.Lock()


class ClientSideWorkerManager(object):
    """Queues operations and hands them to idle workers (see the module's documentation).

    A worker is anything with ``write_message(dict)``; the server's are
    :class:`ClientSideWorkerSocketHandler` sockets.
    """

    def __init__(self):
        self._workers = {}                          # id(worker) -> worker
        self._idle = collections.deque()            # ids of workers without an operation
        self._operations = collections.deque()      # (operation_id, script, continuous)
        self._callbacks = {}                        # operation_id -> callback(worker, result)
        self._in_hand = {}                          # id(worker) -> the operation it runs

    @staticmethod
    def instance():
        """The manager of this process, made on first use."""
        with _instance_lock:
            manager = ClientSideWorkerManager.__dict__.get('_instance')
            if manager is None:
                manager = ClientSideWorkerManager._instance = ClientSideWorkerManager()
            return manager

    @property
    def worker_count(self):
        return len(self._workers)

    @property
    def queued_operations(self):
        return len(self._operations)

    def add_worker(self, worker):
        """``worker`` connected: it gets the next operation."""
        key = id(worker)
        if key in self._workers:
            return
        self._workers[key] = worker
        self._idle.append(key)
        self.run_operation()

    def remove_worker(self, worker):
        """``worker`` left: the operation it had goes back to the front of the queue."""
        key = id(worker)
        if self._workers.pop(key, None) is None:
            return
        try:
            self._idle.remove(key)
        except ValueError:
            pass
        operation = self._in_hand.pop(key, None)
        if operation is not None and not operation[2]:
            # A continuous operation is queued again already.
            self._operations.appendleft(operation)
            self.run_operation()

    def run_operation(self):
        """Send queued operations to idle workers while there are both."""
        while self._operations and self._idle:
            operation = self._operations.popleft()
            key = self._idle.popleft()
            worker = self._workers.get(key)
            if worker is None:
                self._operations.appendleft(operation)
                continue
            self._in_hand[key] = operation
            if operation[2]:
                self._operations.append(operation)
            try:
                worker.write_message({'operation_id': operation[0], 'script': operation[1]})
            except WebSocketClosedError:
                self.remove_worker(worker)

    def add_operation(self, operation_id, operation_script, callback_method=None, max_nodes=1,
                      continuous=False):
        """Queue ``operation_script`` for up to ``max_nodes`` idle workers (at least one).

        ``callback_method(worker, result)`` is called with each result.
        """
        nodes = min(max_nodes, len(self._idle)) or 1
        if callback_method is not None:
            self._callbacks[operation_id] = callback_method
        for _ in range(nodes):
            self._operations.append((operation_id, operation_script, bool(continuous)))
        self.run_operation()

    def finish_operation(self, worker, operation_id, result):
        """``worker`` answered ``operation_id``: call its callback, give the worker more work.

        Raises ValueError when the worker was not running that operation.
        """
        key = id(worker)
        if key not in self._workers:
            return
        operation = self._in_hand.get(key)
        if operation is None or operation[0] != operation_id:
            raise ValueError('operation %s is not the one this worker runs'
                             % shortened(json.dumps(operation_id)))
        del self._in_hand[key]
        self._idle.append(key)
        callback = self._callbacks.get(operation_id)
        try:
            if callback is not None:
                callback(worker, result)
        except Exception:
            logger.exception('the callback of client-side operation %s failed',
                             shortened(repr(operation_id)))
        finally:
            self.run_operation()


def worker_connected(worker):
    """Add ``worker`` to the manager (for a socket handler of your own)."""
    ClientSideWorkerManager.instance().add_worker(worker)


def worker_disconnected(worker):
    """Remove ``worker`` from the manager (for a socket handler of your own)."""
    ClientSideWorkerManager.instance().remove_worker(worker)


def complete(worker, data):
    """Hand ``{"operation_id", "result"}`` from ``worker`` to the manager."""
    ClientSideWorkerManager.instance().finish_operation(worker, data['operation_id'],
                                                        data['result'])


class ClientSideWorkerSocketHandler(WebSocketHandler):
    """The websocket of one client-side worker (see the module's documentation)."""

    debug = False
    allowed_origins = ()

    @classmethod
    def configure(cls):
        cls.debug = bool(options.debug)
        cls.allowed_origins = tuple(split_names(options.socket_allowed_origins))

    def check_origin(self, origin):
        if '*' in self.allowed_origins or origin in self.allowed_origins:
            return True
        return super(ClientSideWorkerSocketHandler, self).check_origin(origin)

    def open(self, *args):
        ClientSideWorkerManager.instance().add_worker(self)

    def on_message(self, message):
        try:
            answer = _operation_answer(message)
            ClientSideWorkerManager.instance().finish_operation(
                self, answer['operation_id'], answer['result'])
        except ValueError as error:
            self._refuse(str(error))
        except Exception as error:
            logger.exception('a client-side worker message failed')
            self._refuse(shortened(str(error)))

    def _refuse(self, value):
        value = 'Invalid message: %s' % value
        error_info(TotoException(ERROR_SERVER, value), self.debug)  # rate-limited log
        try:
            self.write_message({'error': {'code': ERROR_SERVER, 'value': value}})
        except WebSocketClosedError:
            pass

    def on_close(self):
        ClientSideWorkerManager.instance().remove_worker(self)

    def log_error(self, error):
        """Log ``error`` as Toto errors are logged (rate-limited; tracebacks with --debug)."""
        error_info(error, self.debug)


def _operation_answer(message):
    if isinstance(message, bytes):
        raise ValueError('binary messages are not answers; send JSON text')
    try:
        answer = json.loads(message)
    except (ValueError, RuntimeError) as error:  # RuntimeError: nested too deep
        raise ValueError('not JSON (%s)' % shortened(str(error)))
    if not isinstance(answer, dict) or 'operation_id' not in answer or 'result' not in answer:
        raise ValueError('an answer is a JSON object {"operation_id": ..., "result": ...}')
    return answer


__all__ = ['ClientSideWorkerManager', 'ClientSideWorkerSocketHandler', 'complete',
           'worker_connected', 'worker_disconnected']
