"""Rolling reload: new method code in a running worker service, no call lost.

``--command=reload`` makes the service import its method package again
(:func:`reimport_methods`, which refuses code that does not import or
compile) and then replace its worker processes one at a time
(:class:`RollingReload`), each new process ready before the old one leaves::

    reimport_methods('methods')          # raises: the old code goes on
    reload = RollingReload(range(4))
    while reload.step(service):          # from the service's control loop
        ...
"""

from __future__ import absolute_import, division, print_function

import errno
import importlib
import logging
import os
import stat
import sys
import time

from tornado.options import options

from toto.service import _exit_reason

logger = logging.getLogger('toto.worker.reload')

# How long a reload waits for a new worker process to say hello.
_RELOAD_START_WAIT = 10.0
# How long a process being replaced may take to stop once terminated.
_LEAVING_LINGER = 5.0


class RollingReload(object):
    """A reload under way: worker processes replaced one at a time.

    For each, a new process starts first; once it has said hello on the
    control channel the old one is told to leave, and the next begins once
    the old one has answered what it held and ended.  The router keeps its
    clients' connections all along, and holds calls while no worker has
    room, so none is lost.
    """

    def __init__(self, service_ids):
        self.waiting = list(service_ids)
        self.started = time.time()
        self.replaced = 0
        self.current = None  # (service_id, old process)
        self.leaving = False
        self.since = None

    def step(self, service):
        """Move the reload on; False once it is over."""
        now = time.time()
        processes = service._processes
        if self.current is None:
            while self.waiting:
                service_id = self.waiting.pop(0)
                old = processes[service_id]
                if not old.is_alive():
                    continue  # being restarted already, from the new code
                processes[service_id] = service._replace_process(service_id, 'for a reload')
                self.current = (service_id, old)
                self.leaving = False
                self.since = now
                break
            else:
                logger.info('reload done: %d worker process%s replaced in %.1f s',
                            self.replaced, '' if self.replaced == 1 else 'es',
                            now - self.started)
                return False
        service_id, old = self.current
        new = processes[service_id]
        if not self.leaving:
            if service._control.knows(new.pid):
                service._control.send_to_workers('shutdown', pids=(old.pid,))
                self.leaving = True
                self.since = now
            elif now - self.since > _RELOAD_START_WAIT:
                logger.error('reload stopped: the new %s process (pid %d) did not say it '
                             'was ready within %.0f s; the old one (pid %d) goes on', new.name,
                             new.pid, _RELOAD_START_WAIT, old.pid)
                new.terminate()
                new.join(_LEAVING_LINGER)
                processes[service_id] = old
                return False
        elif not old.is_alive():
            old.join()
            service._process_ended(old)
            self.replaced += 1
            logger.info('%s process (pid %d) %s: replaced by pid %d (reload)', old.name,
                        old.pid, _exit_reason(old.exitcode), new.pid)
            self.current = None
        elif now - self.since > options.shutdown_timeout:
            logger.warning('%s process (pid %d) still has calls after --shutdown_timeout '
                           '(%g s): stopping it', old.name, old.pid, options.shutdown_timeout)
            old.terminate()
            self.since = now
        return True

    def abandon(self):
        """The old process being replaced, if any (the service is stopping)."""
        self.waiting = []
        return self.current[1] if self.current is not None else None


def reimport_methods(name):
    """Import the method package ``name`` again from its files.

    Its modules leave ``sys.modules``, so worker processes started after
    this import every method afresh.  When the package does not import, or
    a source file in it does not compile (methods are imported on first
    call, so they are compiled here, not run), the old modules are put back
    and the error is raised.
    """
    def ours(module_name):
        return module_name == name or module_name.startswith(name + '.')

    old_modules = dict((key, module) for key, module in sys.modules.items() if ours(key))
    for key in old_modules:
        del sys.modules[key]
    if hasattr(importlib, 'invalidate_caches'):
        importlib.invalidate_caches()
    try:
        # Python 2 opens a package's __init__.py without looking at what it
        # is: a FIFO there would hang the import.
        for folder in getattr(old_modules.get(name), '__path__', None) or []:
            init = os.path.join(folder, '__init__.py')
            if os.path.lexists(init) and not _is_regular_file(init):
                raise ImportError('%s is not a regular file' % init)
        module = importlib.import_module(name)
        _compile_sources(getattr(module, '__path__', None) or [])
    except BaseException:
        for key in [key for key in sys.modules if ours(key)]:
            del sys.modules[key]
        sys.modules.update(old_modules)
        parent, _, child = name.rpartition('.')
        if parent in sys.modules and name in old_modules:
            setattr(sys.modules[parent], child, old_modules[name])
        raise


def _compile_sources(folders):
    """Compile every ``.py`` file under ``folders``; raise the first error.

    The cached bytecode of each goes first: Python 2 tells a stale ``.pyc``
    only by the source's modification time, to the second, so a file
    changed within the second it was last compiled would run its old code.
    Only regular files are read: opening a FIFO (or a device) named ``x.py``
    would wait for a writer for good, and with it the service's main process.
    """
    for folder in folders:
        for directory, subfolders, names in os.walk(folder):
            subfolders[:] = [sub for sub in subfolders if not sub.startswith(('.', '_'))]
            for file_name in sorted(names):
                if file_name.endswith('.py'):
                    _compile_source(os.path.join(directory, file_name))


def _compile_source(path):
    source = _read_regular_file(path)
    if source is None:
        logger.warning('reload: skipped %s: not a regular file', path)
        return
    for cached in _bytecode_paths(path):
        try:
            os.remove(cached)
        except OSError:
            pass  # none, or not ours to remove
    compile(source, path, 'exec', dont_inherit=True)


def _is_regular_file(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _read_regular_file(path):
    """The bytes of the regular file at ``path`` (a link to one will do); None for others.

    Checked before it is opened, and again on what was opened (without
    waiting: ``O_NONBLOCK``), as the path may be replaced in between.
    """
    if not _is_regular_file(path):
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0)
                             | getattr(os, 'O_NOCTTY', 0))
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENXIO):
            return None  # gone, a dangling link, or a socket
        raise
    with os.fdopen(descriptor, 'rb') as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return None
        return source.read()


def _bytecode_paths(path):
    try:
        from importlib.util import cache_from_source
    except ImportError:  # Python 2: beside the source
        return [path + 'c', path + 'o']
    return [cache_from_source(path)] + [cache_from_source(path, optimization=level)
                                        for level in (1, 2)]
