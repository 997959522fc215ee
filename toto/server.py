"""TotoServer: serve a package of Toto methods over HTTP, in one or more processes.

A Toto web service is a method package (modules with ``invoke(handler,
parameters)``, see :mod:`toto.invocation`), a conf file and a start-up
script::

    # totoserver.py
    from toto.server import TotoServer

    if __name__ == '__main__':
        TotoServer('toto.conf').run()

    # toto.conf (Python syntax)
    port = 8888
    method_module = 'methods'
    database = 'json'
    processes = 2

``python totoserver.py`` serves ``POST /`` with ``{"method": "account.login",
"parameters": {...}}`` (or ``POST /account/login``, see
:class:`toto.handler.TotoHandler`); ``--start``, ``--stop`` and
``--restart`` run it as a daemon; ``--help`` lists every option.

What a server does, as Toto 1.0.12's did: the parent process binds the port
once and forks ``--processes`` processes that share it.  Each one opens
its database connection (``--database``), sets its events up
(``--event_mode``: ``off``, ``on``, or ``only`` to serve events and
websockets without the methods; process *i* listens for events on
``event_port + i``), serves websockets (``--use_web_sockets``) and the
client-side worker route (``--client_side_worker_path``) if asked, calls
``--startup_function`` with ``db_connection=`` and ``application=``, logs
``Starting server <id> on port <port>`` and runs its IOLoop.

What differs from 1.0.12 (each for a reason given in the option's help):

* SIGTERM (``--stop``) and Ctrl-C stop the server gracefully: each process
  stops accepting, lets the requests it took be answered for up to
  ``--shutdown_timeout`` seconds, then exits; a second signal to the
  parent stops every process at once;
* request bodies are limited to ``--max_body_size``, idle connections and
  slow headers to ``--idle_connection_timeout``, slow bodies to
  ``--body_timeout``;
* ``--autoreload`` restarts the whole server on a source change and no
  longer serves tracebacks;
* websockets and the client-side worker route work (1.0.12 crashed with a
  NameError when either was enabled).
"""

from __future__ import absolute_import, division, print_function

import functools
import logging
import os
import signal
import sys
import time

import six
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.options import options

import toto._server_options  # noqa: F401 - defines the server options
from toto import _webapp, _webserver_reload
from toto._webserver_stop import GracefulStop
# 1.0.12's server module had these names too; apps may import them from here.
from toto.handler import TotoHandler
from toto.service import TotoService, process_count

logger = logging.getLogger('toto.server')

# How much longer than --shutdown_timeout the parent waits for its
# processes to stop before it kills them.
_STOP_GRACE = 5.0
# How often the parent looks at the source files under --autoreload.
_RELOAD_CHECK_INTERVAL = 0.5


class TotoServer(TotoService):
    """A Toto web server: ``TotoServer('app.conf', **options).run()``.

    Options come from the keyword arguments, then the conf file, then the
    command line, each overriding what came before.  The modules that
    ``method_module``, ``socket_method_module``, ``event_init_module``,
    ``startup_function``, ``socket_opened_method`` and
    ``socket_closed_method`` name are imported before the options are read
    in full, so the options they define can be set in the conf file and on
    the command line too.

    :meth:`run` serves in the foreground (or starts, stops or restarts the
    daemon); :meth:`prepare` and :meth:`main_loop` are its two halves (the
    parent's and each process's) for those who run processes themselves.
    """

    module_options = ('method_module', 'socket_method_module', 'event_init_module')
    function_options = ('startup_function', 'socket_opened_method', 'socket_closed_method')
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    # Monitors and scripts written for 1.0.12 read the main process's pid there.
    main_pidfile_index = 'master'

    def __init__(self, conf_file=None, **kwargs):
        super(TotoServer, self).__init__(conf_file, **kwargs)
        self.conf_file = conf_file
        #: The port the server listens on (known once :meth:`prepare` bound it).
        self.port = options.port
        self._sockets = []
        self._stop_requested = None
        self._stop_deadline = None
        self._restart_for = None
        self._watch = None
        self._next_reload_check = 0.0
        self._start_error = None
        _configure_handlers()

    # -- the parent ------------------------------------------------------------

    def prepare(self):
        """Check the options and bind the port, once, before the processes start."""
        _webapp.check_options()
        from toto.dbconnection import check_configured_database
        check_configured_database()
        self._sockets = bind_sockets(options.port, options.bind_host or None)
        self.port = self._sockets[0].getsockname()[1]
        if options.autoreload:
            self._watch = _webserver_reload.SourceWatch(extra_files=[self.conf_file])

    def _run_or_control(self):
        if _webserver_reload.restarted_daemon():
            # A daemon that restarted itself for --autoreload: it is the
            # daemon already, with its pidfile.
            self._run_service(daemonized=True)
            return
        super(TotoServer, self)._run_or_control()

    def _stops_gracefully(self, reason):
        # Asked to stop: a restart for --autoreload under way becomes a stop.
        self._restart_for = None
        if self._stop_requested in (None, 'autoreload'):
            self._stop_requested = reason
            return True
        # A second signal: stop at once.
        logger.warning('%s again while stopping: stopping every process now', reason)
        self._kill_processes()
        return False

    def _pause(self, timeout, processes):
        if self._stop_requested is None and self._watch is not None:
            self._look_for_changes()
        if self._stop_requested is not None and not self._stopping:
            self._begin_stop()
        if self._stopping and self._stop_deadline is not None:
            if time.time() > self._stop_deadline:
                logger.warning('processes still running %g s after --shutdown_timeout: '
                               'killing them', _STOP_GRACE)
                self._kill_processes()
                return True
            timeout = min(timeout, 0.05)
        return super(TotoServer, self)._pause(timeout, processes)

    def _look_for_changes(self):
        now = time.time()
        if now < self._next_reload_check:
            return
        self._next_reload_check = now + _RELOAD_CHECK_INTERVAL
        changed = self._watch.changed()
        if changed:
            logger.info('autoreload: %s changed: restarting the server', changed)
            self._restart_for = changed
            self._stop_requested = 'autoreload'

    def _begin_stop(self):
        self._stopping = True
        self._stop_deadline = time.time() + options.shutdown_timeout + _STOP_GRACE
        logger.info('stopping (%s): every process finishes the requests it took, for up '
                    'to %g s (--shutdown_timeout)', self._stop_requested,
                    options.shutdown_timeout)
        self._close_sockets()
        for process in self._processes:
            if process.is_alive():
                _signal(process.pid, signal.SIGTERM)

    def _kill_processes(self):
        for process in getattr(self, '_processes', ()):
            if process.is_alive():
                _signal(process.pid, signal.SIGKILL)

    def _close_sockets(self):
        # New connections would wait in the backlog of a port nobody serves.
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def finish(self):
        self._close_sockets()
        if self._restart_for is not None:
            if self._watch is not None:
                _webserver_reload.forget_bytecode(self._watch.changed_sources)
            _webserver_reload.restart_program(self._daemonized)

    # -- each process ------------------------------------------------------------

    def main_loop(self):
        """Serve in this process until it is stopped (SIGTERM, SIGINT)."""
        from toto.dbconnection import configured_connection
        db_connection = configured_connection()
        service_id = getattr(self, 'service_id', 0)
        io_loop = IOLoop(make_current=False)
        # Everything is set up from inside the running loop, so that the
        # event manager, the startup function and Tornado itself find it
        # as the current loop on every Tornado version.
        io_loop.add_callback(functools.partial(self._serve, io_loop, db_connection,
                                               service_id))
        try:
            io_loop.start()
        finally:
            _close_events()
            io_loop.close(all_fds=True)
        if self._start_error is not None:
            six.reraise(*self._start_error)

    def _serve(self, io_loop, db_connection, service_id):
        try:
            application = _webapp.build_application(db_connection, service_id,
                                                    process_count())
            if options.startup_function:
                _webapp.call_startup_function(options.startup_function, db_connection,
                                              application)
            http_server = HTTPServer(application, **_webapp.server_limits())
            http_server.add_sockets(self._sockets)
        except Exception:
            # Raised again once the loop has stopped: the process fails (and
            # its parent starts it again), rather than idling without serving.
            self._start_error = sys.exc_info()
            io_loop.stop()
            return
        self._graceful_stop = GracefulStop(io_loop, http_server, application,
                                  options.shutdown_timeout,
                                  name='server %d' % service_id)
        self._graceful_stop.take_signals()
        logger.info('Starting server %d on port %s', service_id, self.port)


def _configure_handlers():
    """Read the options into the handler classes, as 1.0.12's constructor did."""
    TotoHandler.configure()
    if options.use_web_sockets:
        from toto.sockets import TotoSocketHandler
        TotoSocketHandler.configure()
    if options.client_side_worker_path:
        from toto.clientsideworker import ClientSideWorkerSocketHandler
        ClientSideWorkerSocketHandler.configure()


def _close_events():
    from toto import events
    manager = events.EventManager.__dict__.get('_instance')
    if manager is not None:
        manager.close(timeout=1.0)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:
        pass  # ended already


__all__ = ['TotoServer', 'TotoHandler', 'process_count']
