"""Tells the log when calls queue for a process of the worker service without a break.

The router and each worker process keep one :class:`SaturationLog`; the
loop that takes calls reports where a batch starts and ends::

    saturation = SaturationLog(after=5.0, who='worker pid 4242')
    saturation.start(answered)
    while a_call_is_waiting():
        saturation.check(answered)
        answered += serve_one_call()
    saturation.stop(answered)
"""

from __future__ import absolute_import, division, print_function

import logging
import time

logger = logging.getLogger('toto.worker.saturation')

#: A saturated router or worker process says so at most this often, in seconds.
SATURATION_LOG_INTERVAL = 60.0


class SaturationLog(object):
    """Tells the log when calls queue for a worker process without a break.

    A worker that finds the next call already waiting each time it answers
    one is the bottleneck of the service: callers wait on top of the
    method's own time, and calls start to time out.  After ``after`` seconds
    of that it logs a warning (at most once a minute), and once it catches
    up it says for how long.  ``after`` 0 turns it off.
    """

    def __init__(self, after, who):
        self.after = after or 0
        self.who = who
        self._busy_since = None
        self._answered_before = 0
        self._warned = False
        self._last_warning = None

    def start(self, answered):
        self._busy_since = time.time()
        self._answered_before = answered

    def check(self, answered):
        if self.after <= 0 or self._warned:
            return
        now = time.time()
        busy = now - self._busy_since
        if busy < self.after:
            return
        if self._last_warning is not None and now - self._last_warning < SATURATION_LOG_INTERVAL:
            return
        self._warned = True
        self._last_warning = now
        logger.warning('%s: saturated: calls have queued for %.1f s without a '
                       'break (%d answered meanwhile); callers wait and may time out',
                       self.who, busy, answered - self._answered_before)

    def stop(self, answered):
        if self._warned:
            logger.info('%s: caught up after %.1f s of queued calls (%d answered)',
                        self.who, time.time() - self._busy_since,
                        answered - self._answered_before)
            self._warned = False
