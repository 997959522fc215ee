"""Methods that keep a visitor log: ``visits.record`` and ``visits.count``.

The log is a text file with one name per line, shared by every worker
process.  Its path is the ``--visits_file`` option, which ``worker.py``
defines (so it can be set in ``worker.conf``); other services that serve
this package write ``visits.log`` in their working directory.
"""

from tornado.options import options


def visits_file():
    """The path of the visitor log."""
    if 'visits_file' in options:
        return options.visits_file
    return 'visits.log'
