"""Send a burst of calls through one ZMQWorkerConnection and count every answer.

    python burstclient.py tcp://127.0.0.1:PORT COUNT loop|thread

Each call is ``echo`` with ``{'i': index}``; a tally keeps, per index, how many answers
came back, so a call that was lost (timed out), answered twice or answered with
someone else's value shows up by number.  ``loop`` makes every call at once from a
running IOLoop (alternately with a callback and awaited); ``thread`` makes them with
callbacks from a plain thread, whose answers come on the connection's I/O thread.

As a program it prints one JSON line: the tally's summary.  Runs on Python 2.7 and 3.
"""

from __future__ import print_function

import json
import sys
import threading
import time

from tornado import gen
from tornado.concurrent import Future

from support import new_io_loop

STYLES = ('loop', 'thread')


class BurstTally(object):
    """Counts the answers of ``count`` echo calls, by index."""

    def __init__(self, count):
        self.count = count
        self.answers = [0] * count
        self.timeouts = 0
        self.others = []          # anything that is not an echo of a known index
        self.completions = 0
        self.seconds = None
        self.on_all_completed = None   # called once every call completed at least once
        self._condition = threading.Condition()

    def record(self, index, result):
        with self._condition:
            self.completions += 1
            if result == {'i': index}:
                self.answers[index] += 1
            elif result == {'error': 'timeout'}:
                self.timeouts += 1
            elif len(self.others) < 10:
                self.others.append((index, repr(result)[:200]))
            self._condition.notify_all()
            finished = self.completions == self.count
        if finished and self.on_all_completed is not None:
            self.on_all_completed()

    def callback(self, index):
        return lambda result: self.record(index, result)

    def wait(self, timeout):
        """Wait until every call completed at least once (or ``timeout`` ran out)."""
        deadline = time.time() + timeout
        with self._condition:
            while self.completions < self.count:
                remaining = deadline - time.time()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)

    def summary(self):
        with self._condition:
            return {
                'sent': self.count,
                'answered': sum(1 for n in self.answers if n == 1),
                'twice': sum(1 for n in self.answers if n > 1),
                'unanswered': sum(1 for n in self.answers if n == 0),
                'timeouts': self.timeouts,
                'completions': self.completions,
                'others': self.others,
                'seconds': self.seconds,
            }


def burst_from_loop(connection, count, timeout):
    """Make ``count`` calls at once from a fresh running IOLoop; return the tally."""
    tally = BurstTally(count)
    loop = new_io_loop()

    @gen.coroutine
    def run():
        started = time.time()
        # Callbacks complete on this loop too: this resolves once all did.
        all_completed = Future()
        tally.on_all_completed = lambda: all_completed.done() or all_completed.set_result(None)
        futures = []
        for index in range(count):
            if index % 2:
                connection.invoke('echo', {'i': index}, callback=tally.callback(index),
                                  timeout=timeout)
            else:
                futures.append((index, connection.invoke('echo', {'i': index},
                                                         timeout=timeout,
                                                         **{'await': True})))
        for index, future in futures:
            tally.record(index, (yield future))
        yield all_completed
        tally.seconds = time.time() - started

    try:
        loop.run_sync(run, timeout=2 * timeout + 10)
    finally:
        loop.close(all_fds=True)
    return tally


def burst_from_thread(connection, count, timeout):
    """Make ``count`` callback calls from this thread (no loop); return the tally."""
    tally = BurstTally(count)
    started = time.time()
    for index in range(count):
        connection.invoke('echo', {'i': index}, callback=tally.callback(index),
                          timeout=timeout)
    tally.wait(2 * timeout + 5)
    tally.seconds = time.time() - started
    return tally


def burst(connection, count, style, timeout):
    if style == 'loop':
        return burst_from_loop(connection, count, timeout)
    if style == 'thread':
        return burst_from_thread(connection, count, timeout)
    raise ValueError('style must be one of %s, not %r' % (STYLES, style))


def main(address, count, style, timeout='60'):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    connection = ZMQWorkerConnection(address, timeout=float(timeout))
    try:
        tally = burst(connection, int(count), style, float(timeout))
        summary = tally.summary()
        summary['pending_after'] = len(connection)
    finally:
        connection.close()
    print(json.dumps(summary, sort_keys=True))
    sys.stdout.flush()


if __name__ == '__main__':
    main(*sys.argv[1:])
