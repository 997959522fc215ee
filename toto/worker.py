"""The ZeroMQ worker side: a router and the processes that run methods.

:class:`TotoWorkerService` binds a ``ROUTER`` socket on
``--worker_bind_address`` that clients connect to, forwards calls through a
queue device to a ``DEALER`` on ``--worker_socket_address``, and runs
``--processes`` :class:`TotoWorker` processes, each a ``REP`` socket taking
one call at a time.  A call ``'a.b'`` runs ``invoke(worker, parameters)``
from the module ``<method_module>.a.b``::

    # methods/accounts/lookup.py
    from toto.invocation import *

    def invoke(worker, parameters):
        if 'id' not in parameters:
            raise TotoException(ERROR_MISSING_PARAMS, 'id is required')
        return {'id': parameters['id'], 'name': 'Ada'}

    # worker.py
    from toto.worker import TotoWorkerService

    if __name__ == '__main__':
        TotoWorkerService(method_module='methods', processes=4).run()

``--processes=0`` runs only the router (bind ``--worker_socket_address`` on
tcp for remote workers) and ``--worker_bind_address=`` runs only worker
processes that connect to a router elsewhere.  ``--command=status`` or
``--command=shutdown`` sends a control command to the running service on
``--control_socket_address``, which passes it on to its worker processes.

The default ``--worker_socket_address`` and ``--control_socket_address`` are
``ipc://`` files in a folder only the service's user can enter (see
:func:`toto._security.default_socket_directory`).
"""

from __future__ import absolute_import, division, print_function

import functools
import importlib
import logging
import os
import time

from tornado.options import options

from toto import _metrics
from toto import _worker_options  # noqa: F401 - defines the service's options
from toto._control import ServiceControl, send_control_command, service_status
from toto._methods import call_startup_function, error_info, error_text, find_method
from toto._protocol import (CONTROL_COMMANDS, CONTROL_PREFIX, DISPATCH_MODES, check_dispatch,
                            check_method_concurrency)
from toto._reload import RollingReload, reimport_methods
from toto._router import check_curve, run_router, start_router_process
from toto._security import (check_socket_path, claim_of, ipc_path, remove_if_unchanged,
                            shortened, warn_once_if_exposed, zmq_bind_host)
from toto._workerprocess import TotoWorker
from toto.service import TotoService, pid_path, process_count

logger = logging.getLogger('toto.worker')

# How often the main process looks at the processes while it stops.
_STOPPING_INTERVAL = 0.02


def _check_service_options():
    """Raise ValueError, with the reason, for options the service cannot run with.

    Checked in the parent before any process starts, so a mistake stops the
    start with one message instead of failing in every worker process.
    """
    check_dispatch(options.dispatch)
    check_method_concurrency(options.method_concurrency)
    if options.worker_bind_address:
        check_curve(options.curve_secret_key, options.curve_authorized_keys)
    # The service binds its worker socket (with a router) and its control
    # socket: refuse paths another local user could stand behind.
    check_socket_path(options.worker_socket_address, binding=bool(options.worker_bind_address))
    if process_count() and options.control_socket_address:
        check_socket_path(options.control_socket_address, binding=True)
    _metrics.check_options(options.metrics_port, options.metrics_address)




class TotoWorkerService(TotoService):
    """Run a router and worker processes for the methods in ``method_module``.

    Options (keyword arguments, conf file or command line): ``method_module``,
    ``worker_bind_address``, ``worker_socket_address``,
    ``control_socket_address``, ``command``, ``processes``, ``daemon``,
    ``pidfile``, ``debug``, ``startup_function``, ``compression_module``,
    ``serialization_module``, ``max_message_size``, ``curve_secret_key``,
    ``curve_authorized_keys``, ``shutdown_timeout``, ``metrics_port`` and
    ``metrics_address``.

    SIGTERM, ``--stop`` and ``--command=shutdown`` stop it gracefully: with
    balanced dispatch the router tells its clients it is draining, answers
    every call it took, and the service ends once it has (or after
    ``--shutdown_timeout`` seconds).  ``--command=reload`` replaces the
    worker processes one at a time with ones that run the method code as
    it is on disk now.
    """

    module_options = ('method_module', 'event_init_module')
    function_options = ('startup_function',)

    def _check_options(self):
        _check_service_options()
        if process_count():
            # A database the service cannot use stops the start here, with
            # one line, rather than every worker process as it starts.
            from toto.dbconnection import check_configured_database
            check_configured_database()

    _control = None
    _router_process = None
    _reload = None
    # Why the service was asked to stop (a signal, a command), until it starts to.
    _stop_requested = None
    _stop_deadline = None
    # What the stop waits for: 'router' (to drain), 'workers' (to end), or
    # 'now' (nothing: stop what is left).
    _stop_phase = None
    # Whether the router has been told to drain (it may not have said hello yet).
    _drain_sent = False
    _metrics_service = None

    def prepare(self):
        self._check_options()
        # Before any other process starts: they inherit where metrics go.
        self._metrics_service = _metrics.start_service(options.metrics_port,
                                                       options.metrics_address)
        self._socket_claims = []
        count = process_count()
        if count and options.method_module:
            # Import the methods in the parent so a broken module fails once,
            # at start-up, instead of in every worker process.
            importlib.import_module(options.method_module)
        if options.worker_bind_address:
            warn_once_if_exposed('the worker service', zmq_bind_host(options.worker_bind_address),
                                 options.serialization_module, options.curve_secret_key,
                                 advice='enable CURVE (--curve_secret_key)')
            self._start_router = functools.partial(
                start_router_process,
                options.worker_bind_address, options.worker_socket_address,
                options.max_message_size, options.curve_secret_key,
                options.curve_authorized_keys, dispatch=options.dispatch,
                saturation_warning_after=options.saturation_warning_after,
                compression=options.compression_module or None,
                serialization=options.serialization_module or None,
                control_socket_address=self._control_address())
            router = self._start_router()
            self._router_process = router
            self._helper_processes.append(router)
            self._socket_claims.append(claim_of(options.worker_socket_address))
        if count == 0:
            logger.info('routing calls from %s to %s', options.worker_bind_address,
                        options.worker_socket_address)
        elif options.worker_bind_address:
            logger.info('%d worker process%s listening on %s', count,
                        '' if count == 1 else 'es', options.worker_bind_address)
        else:
            logger.info('%d worker process%s connecting to %s', count,
                        '' if count == 1 else 'es', options.worker_socket_address)

    @staticmethod
    def _control_address():
        # Only a service with worker processes binds a control socket.
        return (options.control_socket_address or None) if process_count() else None

    def _stops_gracefully(self, reason):
        if self._control is None or self._stop_requested is not None:
            return False  # a second request stops at once
        self._stop_requested = reason
        return True

    def _pause(self, timeout, processes):
        if self._control is None and self._control_address():
            # Bound once the worker processes are forked: they need none of
            # the parent's ZeroMQ state.
            self._control = ServiceControl(self._control_address())
        if self._control is None:
            return super(TotoWorkerService, self)._pause(timeout, processes)
        if self._stopping:
            # Each step of a stop waits on the one before: look more often.
            timeout = min(timeout, _STOPPING_INTERVAL)
        router = self._router_process if options.dispatch == 'balanced' else None
        for command, sender in self._control.serve(timeout, processes, router):
            self._run_command(command, sender)
        if self._stop_requested is not None and not self._stopping:
            self._begin_stop(self._stop_requested)
        if self._reload is not None and not self._reload.step(self):
            self._reload = None
        return self._stopped()

    def _run_command(self, command, sender):
        alive = [process for process in self._processes if process.is_alive()]
        if command == 'status':
            self._control.request_status(sender, self._status())
        elif command == 'shutdown':
            self._control.answer(sender, len(alive))
            if self._stop_requested is None:
                self._stop_requested = 'a shutdown command'
        elif command == 'reload':
            refusal = self._start_reload()
            if refusal:
                logger.error('reload refused: %s', refusal)
                self._control.refuse(sender, refusal)
            else:
                self._control.answer(sender, len(alive))

    def _status(self):
        state = 'stopping' if self._stopping else 'reloading' if self._reload else 'serving'
        return {'pid': os.getpid(), 'state': state, 'uptime': time.time() - self._started,
                'processes': len(self._processes), 'dispatch': options.dispatch,
                'address': options.worker_bind_address or None}

    def _start_reload(self):
        """Begin a reload; the reason when it cannot begin."""
        if self._stopping:
            return 'the service is stopping'
        if self._reload is not None:
            return 'a reload is already under way'
        if options.dispatch != 'balanced':
            # A queue device hands calls to a REP process that cannot refuse
            # them: those queued for the process being replaced would be lost.
            return 'reload needs --dispatch=balanced'
        try:
            reimport_methods(options.method_module)
        except Exception as error:
            return 'the method code of %s does not import or compile: %s: %s' % (
                options.method_module, type(error).__name__, shortened(error_text(error), 200))
        logger.info('reload: replacing %d worker process%s one at a time',
                    len(self._processes), '' if len(self._processes) == 1 else 'es')
        self._reload = RollingReload(range(len(self._processes)))
        return None

    def _begin_stop(self, reason):
        self._stopping = True
        self._stop_deadline = time.time() + options.shutdown_timeout
        if self._reload is not None:
            leaving = self._reload.abandon()
            if leaving is not None:
                self._retiring.append(leaving)
            self._reload = None
        router = self._router_process
        if router is not None and not router.is_alive():
            # Nothing can reach the worker processes any more: stop them now.
            logger.info('stopping (%s): the router has ended already', reason)
            self._stop_phase = 'now'
        elif options.dispatch == 'balanced' and router is not None:
            logger.info('stopping (%s): the router tells its clients and answers every '
                        'call it took, for up to %g s (--shutdown_timeout)', reason,
                        options.shutdown_timeout)
            self._stop_phase = 'router'
            self._drain_sent = self._control.send_to_router('drain')
        else:
            logger.info('stopping (%s): worker processes answer the calls in hand, for up '
                        'to %g s (--shutdown_timeout)', reason, options.shutdown_timeout)
            self._stop_phase = 'workers'
            self._control.send_to_workers('shutdown')

    def _stopped(self):
        """Whether the stop under way is over (or out of time)."""
        if not self._stopping or self._stop_deadline is None:
            return False
        if self._stop_phase == 'now':
            return True
        if time.time() > self._stop_deadline:
            logger.warning('stopping: --shutdown_timeout (%g s) is over: stopping the '
                           'processes still running', options.shutdown_timeout)
            return True
        if self._stop_phase == 'router':
            if not self._drain_sent:
                # Not said hello yet: it may still be starting.
                self._drain_sent = self._control.send_to_router('drain')
            if not self._router_process.is_alive():
                # Drained: the worker processes hold no calls any more.
                self._stop_phase = 'workers'
                for process in self._processes:
                    if process.is_alive():
                        process.terminate()
        return False

    def _process_ended(self, process):
        if self._metrics_service is not None:
            self._metrics_service.process_ended(process.pid)

    def _process_restarting(self, process):
        if self._metrics_service is not None:
            self._metrics_service.process_restarted()

    def _replace_helper(self, helper, ended):
        if helper is not self._router_process:
            return super(TotoWorkerService, self)._replace_helper(helper, ended)
        # A router can die of what a peer does to it (libzmq aborts on a
        # file descriptor it cannot get): without one the service takes no
        # calls, so start another on the same addresses. Clients and worker
        # processes connect again by themselves; the calls the dead router
        # held are lost (their clients time out, or retry with auto_retry).
        logger.error('%s: starting a new router; the calls it held are lost', ended)
        self._process_restarting(helper)
        try:
            router = self._start_router()
        except RuntimeError as error:
            logger.error('%s', error)
            return None
        logger.info('%s process started again (pid %d)', router.name, router.pid)
        self._router_process = router
        # The new router bound a new socket file: that one is removed at the end.
        self._socket_claims = [claim for claim in self._socket_claims
                               if claim is None or claim[0] != ipc_path(
                                   options.worker_socket_address)]
        self._socket_claims.append(claim_of(options.worker_socket_address))
        return router

    def finish(self):
        for process in self._retiring:
            process.terminate()
            process.join()
        if self._metrics_service is not None:
            self._metrics_service.close()
        if self._control is not None:
            self._control.close()
            self._control = None
        for claim in getattr(self, '_socket_claims', ()):
            remove_if_unchanged(claim)

    def main_loop(self):
        from toto.dbconnection import configured_connection
        db_connection = configured_connection()
        if options.remote_event_receivers:
            self._send_events_to(options.remote_event_receivers)
        worker = TotoWorker(options.method_module, options.worker_socket_address,
                            db_connection=db_connection,
                            control_socket_address=options.control_socket_address,
                            compression=options.compression_module or None,
                            serialization=options.serialization_module or None,
                            debug=options.debug, max_message_size=options.max_message_size,
                            saturation_warning_after=options.saturation_warning_after,
                            dispatch=options.dispatch,
                            method_concurrency=options.method_concurrency)
        worker.service_id = getattr(self, 'service_id', 0)
        if options.startup_function:
            call_startup_function(options.startup_function, worker)
        worker.start()

    @staticmethod
    def _send_events_to(receivers):
        """Make this process's event manager send to ``--remote_event_receivers``.

        A worker process only sends events (it binds no event socket); as in
        1.0.12 the ``--event_init_module``'s ``invoke(event_manager)`` is then
        called.  Addresses may also be given comma separated in one value.
        """
        from toto.events import EventManager
        manager = EventManager.instance()
        for entry in receivers:
            for address in entry.split(','):
                if address.strip():
                    manager.register_server(address.strip())
        if options.event_init_module:
            importlib.import_module(options.event_init_module).invoke(manager)

    def run(self):
        """Send ``--command`` to the running service, or run the service."""
        if options.command:
            reached = send_control_command(options.command, options.control_socket_address)
            logger.info('sent %r to %d worker process%s', options.command, reached,
                        '' if reached == 1 else 'es')
            return
        super(TotoWorkerService, self).run()


__all__ = ['TotoWorker', 'TotoWorkerService', 'find_method', 'error_info',
           'send_control_command', 'service_status', 'pid_path', 'run_router',
           'CONTROL_COMMANDS', 'CONTROL_PREFIX', 'DISPATCH_MODES']
