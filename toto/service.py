"""Running a Toto service: configuration, worker processes and daemons.

:class:`TotoService` is the base of long running Toto programs.  It reads its
options from keyword arguments, a conf file and the command line, starts
``--processes`` copies of :meth:`TotoService.main_loop` and, with
``--daemon=start|stop|restart`` (or ``--start``, ``--stop``, ``--restart``),
runs them detached from the terminal with one pidfile per process::

    from toto.service import TotoService

    class Clock(TotoService):
        def main_loop(self):
            while True:
                time.sleep(1)
                logging.info('tick from process %d', self.service_id)

    if __name__ == '__main__':
        Clock('clock.conf', processes=2).run()   # python clock.py --start

Options given as keyword arguments are applied first, then the conf file,
then the command line, each overriding what came before.
"""

from __future__ import absolute_import, division, print_function

import errno
import importlib
import logging
import multiprocessing
import os
import re
import signal
import sys
import time

import tornado.options
from tornado.options import options

from toto.options import safe_define

logger = logging.getLogger('toto.service')

_OPTION_GROUP = 'service'

safe_define('daemon', metavar='start|stop|restart', type=str, group=_OPTION_GROUP,
            help='Run as a daemon: start, stop or restart it.  On the command line '
                 'the --start, --stop and --restart aliases are shorter')
safe_define('processes', default=1, type=int, group=_OPTION_GROUP, metavar='N',
            help='How many service processes to run; negative: one per CPU')
safe_define('pidfile', default='toto.daemon.pid', type=str, group=_OPTION_GROUP,
            metavar='PATH',
            help='Daemon pidfile path; process i writes <name>.<i>.<ext>, '
                 'e.g. toto.daemon.pid -> toto.daemon.0.pid')
safe_define('start', default=False, type=bool, group=_OPTION_GROUP,
            help='Same as --daemon=start; wins over the daemon option')
safe_define('stop', default=False, type=bool, group=_OPTION_GROUP,
            help='Same as --daemon=stop; wins over the daemon option')
safe_define('restart', default=False, type=bool, group=_OPTION_GROUP,
            help='Same as --daemon=restart; wins over the daemon option')
safe_define('nodaemon', default=False, type=bool, group=_OPTION_GROUP,
            help='Run in the foreground even if a conf file sets daemon')
safe_define('debug', default=False, type=bool, group=_OPTION_GROUP,
            help='Debug mode: log full tracebacks for errors')
safe_define('shutdown_timeout', default=30.0, type=float, group=_OPTION_GROUP,
            metavar='SECONDS',
            help='How long a graceful stop (SIGTERM, --stop, a shutdown command) may '
                 'take to answer the calls already taken before what is left is '
                 'stopped; a second SIGTERM stops at once')

_DAEMON_COMMANDS = ('start', 'stop', 'restart')
# How long "stop" waits for stopped processes to exit before it gives up.
_STOP_WAIT = 10.0
# How often the parent looks for service processes that ended.
_SUPERVISE_INTERVAL = 0.2
# A process that crashes this many times within the window stays down.
_RESPAWN_LIMIT = 5
_RESPAWN_WINDOW = 60.0


def pid_path(i):
    """Return the pidfile path for process ``i`` built from ``--pidfile``.

    The index goes before the extension: ``toto.daemon.pid`` gives
    ``toto.daemon.0.pid`` for ``i == 0``.
    """
    directory, name = os.path.split(os.path.abspath(options.pidfile))
    parts = name.rsplit('.', 1)
    name = '%s.%s' % (parts[0], i)
    if len(parts) > 1:
        name += '.' + parts[1]
    return os.path.join(directory, name)


def process_count():
    """The number of service processes ``--processes`` asks for."""
    if options.processes is None or options.processes < 0:
        return multiprocessing.cpu_count()
    return options.processes


def _existing_pidfiles():
    """The pidfiles of this service's processes that exist now."""
    marker = 'TOTOPIDINDEX'
    # Numbered files, and the "master" file of a web server's main process.
    pattern = re.compile('^' + re.escape(pid_path(marker)).replace(marker, r'(?:\d+|master)')
                         + '$')
    directory = os.path.dirname(pid_path(0))
    if not os.path.isdir(directory):
        return []
    found = (os.path.join(directory, name) for name in sorted(os.listdir(directory)))
    return [path for path in found if pattern.match(path)]


def _read_pid(path):
    try:
        with open(path) as pidfile:
            return int(pidfile.read().strip())
    except (IOError, OSError, ValueError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    # A daemon that exited stays a zombie until init reaps it: not alive.
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[-1].split()[0] != 'Z'
    except (IOError, OSError, IndexError):
        return True


def _process_started(pid):
    """When process ``pid`` started, in clock ticks since boot; None where unknown.

    With its pid, this names one process for as long as the machine runs:
    a pid is given again only after its process ended, to a later one.
    """
    try:
        with open('/proc/%d/stat' % pid) as stat:
            # Field 22; the name before it (in parentheses) may hold spaces.
            return int(stat.read().rsplit(')', 1)[-1].split()[19])
    except (IOError, OSError, IndexError, ValueError):
        return None


def _start_record_path(path):
    """The file beside pidfile ``path`` that says when its process started.

    Hidden, and named so that no pidfile pattern (1.0.12's either) takes
    it for a pidfile: the pidfile itself holds only the pid, as in 1.0.12.
    """
    directory, name = os.path.split(path)
    return os.path.join(directory, '.%s.started' % name)


def _write_pid(path, pid):
    with open(path, 'w') as pidfile:
        pidfile.write(str(pid))
    started = _process_started(pid)
    if started is None:
        _remove(_start_record_path(path))
        return
    with open(_start_record_path(path), 'w') as record:
        record.write('%d %d\n' % (pid, started))


def _recorded_start(path, pid):
    """When the process of pidfile ``path`` started, as recorded with it; None if unknown."""
    try:
        with open(_start_record_path(path)) as record:
            recorded_pid, started = [int(field) for field in record.read().split()]
    except (IOError, OSError, ValueError):
        return None
    # A record of another pid is stale: the pidfile was written again
    # without one (by 1.0.12, say).
    return started if recorded_pid == pid else None


def _still_ours(path, pid):
    """Whether ``pid``, read from pidfile ``path``, is still the process it was written for.

    After a crash a pidfile stays behind, and the system may have given its
    pid to another program since: that one started later than the record
    says.  Without a record (1.0.12 wrote the pidfile, or no ``/proc``),
    a live pid is all there is to go by.
    """
    if not _alive(pid):
        return False
    recorded = _recorded_start(path, pid)
    if recorded is None:
        return True
    started = _process_started(pid)
    return started is None or started == recorded


def _remove(path):
    try:
        os.remove(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise


def _remove_pidfile(path):
    _remove(path)
    _remove(_start_record_path(path))


class TotoService(object):
    """Base class for Toto services: override :meth:`main_loop`.

    ``conf_file`` names a ``tornado.options`` conf file; keyword arguments
    set options by name.  Keyword arguments are applied first, then the conf
    file, then the command line, so the command line has the last word.

    :meth:`run` calls :meth:`prepare` once in the parent process, then
    :meth:`main_loop` in each of ``--processes`` child processes (each with
    ``self.service_id`` set to its index), waits for them and calls
    :meth:`finish`.  A process that crashes or is killed is started again
    (up to five times a minute); one that returns, or ends on SIGTERM, is
    not.
    """

    #: Options that name a module whose own options must be honoured from the
    #: conf file and the command line: the module is imported before the
    #: options are read in full (see :meth:`_load_options_importing`).
    module_options = ()
    #: Options that name ``module.function``; the module is imported likewise.
    function_options = ()
    #: Signals that stop the service (see :meth:`_stops_gracefully`).  SIGINT
    #: may be listed too: it is then taken only when it is not ignored (a
    #: program started in the background keeps ignoring it), and each
    #: service process gets Python's default action for it back.
    stop_signals = (signal.SIGTERM,)
    #: The :func:`pid_path` index of a daemon's main process: ``0`` (a web
    #: server says ``'master'``, the name Toto 1.0.12 gave that file).
    main_pidfile_index = 0

    def __init__(self, conf_file=None, **kwargs):
        if self.module_options or self.function_options:
            self._load_options_importing(conf_file, kwargs)
        else:
            self._drop_root_handlers_for_log_file()
            self._load_options(conf_file, **kwargs)

    @staticmethod
    def _drop_root_handlers_for_log_file():
        # As in 1.0.12: with --log_file_prefix, logging goes to that file only.
        if options.log_file_prefix:
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)

    def _load_options_importing(self, conf_file, kwargs):
        """Read the options in two passes, importing the modules options name between them.

        A method module (or an event or startup module) may define options
        of its own, which the conf file and the command line can only set
        once they are defined.  So, as 1.0.12 does: a first pass reads only
        the module options (keyword arguments, conf file, command line), the
        modules they name are imported (defining their options), then every
        option is read, and the modules are imported once more so that what
        they read from the options at import time is the final value.
        Unlike 1.0.12, the first pass keeps the program's name in the
        command line it reads, so the first module option given there is not
        dropped.
        """
        names = set(self.module_options) | set(self.function_options)
        program, arguments = sys.argv[:1], sys.argv[1:]
        saved_argv = sys.argv
        sys.argv = program + [argument for argument in arguments
                              if argument.startswith('-') and
                              argument.lstrip('-').split('=', 1)[0] in names]
        try:
            self._load_options(conf_file, final=False,
                               **dict((name, value) for name, value in kwargs.items()
                                      if name in names))
        finally:
            sys.argv = saved_argv
        modules = self._named_modules()
        for name in sorted(modules):
            try:
                importlib.import_module(name)
            except ImportError as error:
                # Reported where the service needs the module (a router-only
                # worker service needs no method package).
                logger.debug('option module %s does not import yet: %s', name, error)
                modules.discard(name)
        self._drop_root_handlers_for_log_file()
        self._load_options(conf_file, **kwargs)
        _reimport_without_defining(modules)

    def _named_modules(self):
        """The modules the module and function options name now."""
        modules = set()
        for name in self.module_options:
            if getattr(options, name, None):
                modules.add(getattr(options, name))
        for name in self.function_options:
            if getattr(options, name, None) and '.' in getattr(options, name):
                modules.add(getattr(options, name).rsplit('.', 1)[0])
        return modules

    def _load_options(self, conf_file=None, final=True, **kwargs):
        for name, value in kwargs.items():
            if name not in options:
                raise TypeError('unknown option %r for %s' % (name, type(self).__name__))
            setattr(options, name, value)
        if conf_file:
            tornado.options.parse_config_file(conf_file, final=False)
        tornado.options.parse_command_line(final=final)
        if options.start:
            options.daemon = 'start'
        elif options.stop:
            options.daemon = 'stop'
        elif options.restart:
            options.daemon = 'restart'
        elif options.nodaemon:
            options.daemon = ''

    def _check_options(self):
        """Raise ValueError, with the reason, for options this service cannot run with."""

    def prepare(self):
        """Run once in the parent process before the service processes start."""

    def main_loop(self):
        """The work of one service process; ``self.service_id`` is its index."""

    def finish(self):
        """Run once in the parent process after every service process ended."""

    # -- running ----------------------------------------------------------

    def run(self):
        """Run the service in the foreground, or start, stop or restart its daemon.

        A database the service cannot use stops the start with its one line on
        standard error and exit status 1 (a ``SystemExit``), not a traceback.
        """
        from toto.dbconnection import DatabaseUnavailable
        try:
            self._run_or_control()
        except DatabaseUnavailable as error:
            raise SystemExit(str(error))

    def _run_or_control(self):
        command = options.daemon
        if not command:
            self._run_service()
            return
        if command not in _DAEMON_COMMANDS:
            raise ValueError('invalid daemon option %r: use start, stop or restart'
                             % (command,))
        if command in ('stop', 'restart'):
            self._stop_daemon()
        if command in ('start', 'restart'):
            self._start_daemon()

    def _stop_daemon(self):
        pidfiles = _existing_pidfiles()
        if not pidfiles:
            logger.warning('%s is not running: no pidfile matches %s',
                           type(self).__name__, pid_path('N'))
            return False
        pids = self._pids_still_ours(pidfiles)
        main_pid = pids.get(pid_path(self.main_pidfile_index))
        if main_pid is not None:
            # The main process stops its own processes, gracefully when it
            # can: give it --shutdown_timeout and a little more.
            self._signal(main_pid)
            _wait_for_exit([main_pid], options.shutdown_timeout + _STOP_WAIT)
        # What is still running (all of it, when the main process had died).
        left = [pid for pid in pids.values() if _alive(pid)]
        for pid in left:
            self._signal(pid)
        for path in pidfiles:
            _remove_pidfile(path)
        _wait_for_exit(left, _STOP_WAIT)
        return True

    def _pids_still_ours(self, pidfiles):
        """``{pidfile: pid}`` of the ``pidfiles`` whose process is alive and still ours.

        A pid another program has taken since is logged and left alone.
        """
        pids = {}
        for path in pidfiles:
            pid = _read_pid(path)
            if pid is None or not _alive(pid):
                continue
            if _still_ours(path, pid):
                pids[path] = pid
            else:
                logger.warning('%s names pid %d, which is no longer a %s process (another '
                               'program has that pid now): leaving it alone, the pidfile '
                               'is stale', path, pid, type(self).__name__)
        return pids

    def _signal(self, pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError as error:
            if error.errno != errno.ESRCH:
                raise
        logger.info('stopping %s process %d', type(self).__name__, pid)

    def _start_daemon(self):
        pidfiles = _existing_pidfiles()
        running = sorted(self._pids_still_ours(pidfiles))
        if running:
            logger.error('not starting %s: already running (pidfiles %s)',
                         type(self).__name__, ', '.join(running))
            return False
        for stale in pidfiles:
            _remove_pidfile(stale)
        first_child = os.fork()
        if first_child:
            # The first child exits once the daemon's pidfile is written;
            # waiting for it leaves no zombie and makes "start" synchronous.
            os.waitpid(first_child, 0)
            logger.info('started %s daemon (pidfile %s)', type(self).__name__,
                        pid_path(self.main_pidfile_index))
            return True
        # First child: leave the terminal's session, then fork the daemon.
        os.setsid()
        daemon_pid = os.fork()
        if daemon_pid:
            _write_pid(pid_path(self.main_pidfile_index), daemon_pid)
            os._exit(0)
        self._detach_stdio()
        try:
            self._run_service(daemonized=True)
        finally:
            os._exit(0)

    @staticmethod
    def _detach_stdio():
        devnull = os.open(os.devnull, os.O_RDWR)
        for stream in (sys.stdin, sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (AttributeError, OSError, ValueError):
                pass

    def _run_service(self, daemonized=False):
        count = process_count()
        # prepare() may start helper processes (a router, say) that live as
        # long as the service: they are waited for when there are no service
        # processes and stopped with the service.
        self._helper_processes = []
        self._retiring = []
        self._daemonized = daemonized
        self._started = time.time()
        self.prepare()
        processes = [self._start_process(service_id) for service_id in range(count)]
        # The list the supervisor watches: subclasses may put new processes in.
        self._processes = processes
        helpers = list(self._helper_processes)
        for helper in helpers:
            logger.info('%s process started (pid %d)', helper.name, helper.pid)
        pid_indexes = range(1, count + len(helpers) + 1)
        if daemonized:
            for index, process in zip(pid_indexes, processes + helpers):
                _write_pid(pid_path(index), process.pid)
        logger.info('started %d %s process%s', count, type(self).__name__,
                    '' if count == 1 else 'es')
        previous = self._take_stop_signals()
        try:
            self._supervise(processes)
        except (SystemExit, KeyboardInterrupt):
            pass
        finally:
            # The helpers running now: some may have been started again.
            helpers = [helper for helper in self._helper_processes if helper is not None]
            stopping = [process for process in processes + helpers if process.is_alive()]
            for process in stopping:
                process.terminate()
            for process in processes + helpers:
                process.join(_STOP_WAIT)
            for process in stopping:
                logger.info('%s process (pid %d) stopped with the service', process.name,
                            process.pid)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.finish()
            if daemonized:
                for index in [self.main_pidfile_index] + list(pid_indexes):
                    _remove_pidfile(pid_path(index))

    def _start_process(self, service_id, reason='with the service'):
        process = multiprocessing.Process(target=self._service_process, args=(service_id,),
                                          name='%s-%d' % (type(self).__name__, service_id))
        process.daemon = True
        process.start()
        logger.info('%s process started %s (pid %d)', process.name, reason, process.pid)
        return process

    def _replace_process(self, service_id, reason):
        """Start a new process for ``service_id``; a daemon's pidfile names it."""
        process = self._start_process(service_id, reason)
        if self._daemonized:
            _write_pid(pid_path(service_id + 1), process.pid)
        return process

    def _supervise(self, processes):
        """Wait for the service processes; start again any that crashed.

        A process that ends cleanly (a ``shutdown`` command, SIGTERM) stays
        ended, and the service ends when all have.  One that crashed or was
        killed is started again, unless it crashed ``_RESPAWN_LIMIT`` times
        within ``_RESPAWN_WINDOW`` seconds (then it is left down and logged).
        A helper process that ends while the service is not stopping is
        handed to :meth:`_replace_helper`, within the same limit for all
        helpers together.
        """
        crashes = dict((service_id, []) for service_id in range(len(processes)))
        running = set(range(len(processes)))
        # Started again in place, or None once left down: a helper keeps its
        # position, and with it its pidfile.
        helpers = self._helper_processes
        helper_crashes = []
        # Without service processes (a router alone) the helpers are the service.
        while running or (not processes and any(helpers)):
            watched = [processes[i] for i in sorted(running)] or \
                [helper for helper in helpers if helper is not None]
            if self._pause(_SUPERVISE_INTERVAL, watched):
                return
            for position, helper in enumerate(helpers):
                if helper is None or helper.is_alive():
                    continue
                helpers[position] = None
                self._process_ended(helper)
                ended = '%s process (pid %d) %s' % (helper.name, helper.pid,
                                                    _exit_reason(helper.exitcode))
                if self._stopping:
                    logger.info('%s: the service is stopping', ended)
                    continue
                now = time.time()
                helper_crashes[:] = [t for t in helper_crashes if now - t < _RESPAWN_WINDOW]
                helper_crashes.append(now)
                if len(helper_crashes) >= _RESPAWN_LIMIT:
                    logger.error('%s, %d helper ends in %d s: leaving it down; the service '
                                 'takes no calls without it', ended, _RESPAWN_LIMIT,
                                 _RESPAWN_WINDOW)
                    continue
                replacement = self._replace_helper(helper, ended)
                if replacement is not None:
                    helpers[position] = replacement
                    if self._daemonized:
                        _write_pid(pid_path(len(processes) + position + 1), replacement.pid)
            for service_id in sorted(running):
                process = processes[service_id]
                if process.is_alive():
                    continue
                self._process_ended(process)
                ended = '%s process (pid %d) %s' % (process.name, process.pid,
                                                    _exit_reason(process.exitcode))
                if process.exitcode == 0 or self._stopping:
                    logger.info('%s%s', ended, ': the service is stopping'
                                if self._stopping else '')
                    running.discard(service_id)
                    continue
                now = time.time()
                recent = [t for t in crashes[service_id] if now - t < _RESPAWN_WINDOW]
                crashes[service_id] = recent + [now]
                if len(recent) + 1 >= _RESPAWN_LIMIT:
                    logger.error('%s, %d times in %d s: leaving it down', ended,
                                 _RESPAWN_LIMIT, _RESPAWN_WINDOW)
                    running.discard(service_id)
                    continue
                logger.warning('%s: starting it again', ended)
                self._process_restarting(process)
                processes[service_id] = self._replace_process(service_id, 'again')

    #: Set once the service is on its way out: ended processes stay ended.
    _stopping = False
    #: Processes on their way out that the supervisor no longer watches.
    _retiring = ()

    def _take_stop_signals(self):
        """Handle :attr:`stop_signals`; returns the handlers they had before."""
        previous = {}
        for signum in self.stop_signals:
            if signum != signal.SIGTERM and signal.getsignal(signum) == signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, self._on_stop_signal)
        return previous

    def _on_stop_signal(self, signum, frame):
        if not self._stops_gracefully(_signal_name(signum)):
            raise SystemExit(0)

    def _stops_gracefully(self, reason):
        """Begin a graceful stop for ``reason``; False to stop at once.

        The default stops at once.  A subclass that returns True ends the
        service itself, from :meth:`_pause`.
        """
        return False

    def _process_ended(self, process):
        """Called in the parent for each service or helper process found ended."""

    def _replace_helper(self, helper, ended):
        """Start again a helper process that ended while the service was not stopping.

        ``ended`` says which and how, for the log.  Returns the new process,
        or None when the service goes on without one (the default).
        """
        logger.error('%s: the service goes on without it', ended)
        return None

    def _process_restarting(self, process):
        """Called in the parent before a crashed service ``process`` is started again."""

    def _pause(self, timeout, processes):
        """Wait up to ``timeout`` seconds, or until the first of ``processes`` ends.

        Subclasses may serve other work meanwhile (a control channel); a
        true result ends the service, stopping the processes still running.
        """
        if processes:
            processes[0].join(timeout)
        else:
            time.sleep(timeout)
        return False

    def _service_process(self, service_id):
        self.service_id = service_id
        signal.signal(signal.SIGTERM, _raise_system_exit)
        if (signal.SIGINT in self.stop_signals
                and signal.getsignal(signal.SIGINT) == self._on_stop_signal):
            # Started again by the parent, which handles SIGINT: the
            # parent's handler would do nothing here.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.main_loop()
        except (SystemExit, KeyboardInterrupt):
            pass


def _reimport_without_defining(names):
    """Import the modules ``names`` again, with ``tornado.options.define`` a no-op.

    Their options are defined already (by the first import) and hold their
    final values; a module that reads them at import time now reads those.
    """
    names = set(name for name in names if name != '__main__')

    def within(module_name):
        return any(module_name == name or module_name.startswith(name + '.') for name in names)

    for module_name in [key for key in list(sys.modules) if within(key)]:
        del sys.modules[module_name]
    define = tornado.options.define
    tornado.options.define = _define_nothing
    try:
        for name in sorted(names):
            importlib.import_module(name)
    finally:
        tornado.options.define = define


def _define_nothing(*args, **kwargs):
    return None


def _signal_name(signum):
    if signum == signal.SIGTERM:
        return 'SIGTERM'
    if signum == signal.SIGINT:
        return 'SIGINT'
    return 'signal %d' % signum


def _exit_reason(exitcode):
    """How a process ended, from its multiprocessing exit code."""
    if exitcode is None:
        return 'is still running'
    if exitcode == 0:
        return 'exited'
    if exitcode > 0:
        return 'exited with status %d' % exitcode
    try:
        name = signal.Signals(-exitcode).name
    except (AttributeError, ValueError):  # Python 2 has no signal.Signals
        name = dict((getattr(signal, n), n) for n in dir(signal)
                    if n.startswith('SIG') and not n.startswith('SIG_')).get(
                        -exitcode, 'signal %d' % -exitcode)
    return 'was killed by %s' % name


def _wait_for_exit(pids, timeout):
    deadline = time.time() + timeout
    while pids and time.time() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        if pids:
            time.sleep(0.05)


def _raise_system_exit(signum, frame):
    raise SystemExit(0)
