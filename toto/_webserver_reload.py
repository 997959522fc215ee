"""``--autoreload`` for a TotoServer: start the whole server again when its source changes.

1.0.12 turned Tornado's debug mode on in each server process.  Tornado's
reloader then replaced that one process with a new copy of the program,
which could not bind the port the parent still held, so the change never
took.  Here the parent process watches the files instead: when a module's
source (or the conf file, or a file given to ``tornado.autoreload.watch``)
changes, and the changed Python source still compiles, the server stops
its processes gracefully and replaces itself with a new run of the same
command line::

    watch = SourceWatch(extra_files=['app.conf'])
    ...
    changed = watch.changed()          # now and then: a path, or None
    if changed:
        ...stop the processes, close the listening sockets...
        restart_program(daemonized=False)

A daemon keeps its pid (and so its pidfile) through the restart.
"""

from __future__ import absolute_import, division, print_function

import logging
import os
import sys

from tornado import autoreload

logger = logging.getLogger('toto.server')

#: Set in the environment of the new run of a daemon that restarted itself:
#: it serves at once instead of forking a new daemon.
REEXEC_ENVIRONMENT = 'TOTO_SERVER_RESTARTED_DAEMON'


class SourceWatch(object):
    """Tells which watched file changed since the last look.

    Watched: the source file of every module imported now or later, the
    ``extra_files`` and those given to ``tornado.autoreload.watch``.
    """

    def __init__(self, extra_files=()):
        self.extra_files = [os.path.abspath(path) for path in extra_files if path]
        #: The Python sources seen changed (and compiling): see forget_bytecode().
        self.changed_sources = set()
        self._modified = {}
        self.changed()  # what is there now is the baseline

    def changed(self):
        """The first watched file that changed since the last call, or None.

        A Python source that no longer compiles is logged and not reported:
        the server keeps running the code it has until the file is fixed.
        """
        found = None
        for path in self._paths():
            try:
                modified = os.stat(path).st_mtime
            except OSError:
                continue
            known = self._modified.get(path)
            self._modified[path] = modified
            if known is None or known == modified:
                continue
            if path.endswith('.py'):
                if not _compiles(path):
                    continue
                self.changed_sources.add(path)
            if found is None:
                found = path
        return found

    def _paths(self):
        paths = set(self.extra_files)
        paths.update(getattr(autoreload, '_watched_files', ()))
        for module in list(sys.modules.values()):
            path = getattr(module, '__file__', None)
            if not path:
                continue
            if path.endswith(('.pyc', '.pyo')):
                path = path[:-1]
            paths.add(os.path.abspath(path))
        return sorted(paths)


def _compiles(path):
    try:
        with open(path, 'rb') as source:
            compile(source.read(), path, 'exec')
    except (SyntaxError, ValueError, TypeError) as error:
        logger.error('autoreload: %s changed but does not compile (%s): not restarting',
                     path, error)
        return False
    except (IOError, OSError):
        return False
    return True


def forget_bytecode(sources):
    """Remove the cached bytecode of ``sources`` before the program runs again.

    Python trusts a cached ``.pyc`` whose recorded source time (in whole
    seconds) and size match the source: an edit of the same size within the
    second of the last one would have the new run import the old code.
    """
    for source in sources:
        if sys.version_info[0] >= 3:
            import importlib.util
            cached = [importlib.util.cache_from_source(source)]
        else:
            cached = [source + 'c', source + 'o']
        for path in cached:
            try:
                os.remove(path)
            except OSError:
                pass  # none, or not ours to remove: the source time decides then


def restart_program(daemonized):
    """Replace this process with a new run of its command line (does not return)."""
    if daemonized:
        os.environ[REEXEC_ENVIRONMENT] = str(os.getpid())
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if spec is not None and getattr(spec, 'name', None):
        # Run as ``python -m package.module``: run it that way again.
        argv = [sys.executable, '-m', spec.name] + sys.argv[1:]
    else:
        argv = [sys.executable] + sys.argv
    logger.info('autoreload: starting again: %s', ' '.join(argv))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, IOError, OSError, ValueError):
            pass
    os.execv(sys.executable, argv)


def restarted_daemon():
    """True (once) in the new run of a daemon that restarted itself."""
    marker = os.environ.pop(REEXEC_ENVIRONMENT, None)
    return marker is not None and marker == str(os.getpid())
