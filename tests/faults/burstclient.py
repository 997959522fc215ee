"""Send a burst of calls through one ZMQWorkerConnection and account for every one.

    python burstclient.py tcp://127.0.0.1:PORT COUNT loop|thread [TIMEOUT]

Each call is ``echo`` with ``{'i': number}`` and is counted in a
:class:`faultkit.CompactTally`: an echo of its own number is ``answered``, anything
else an error (so an answer handed to the wrong call shows), and a call completed
twice or never shows by number.  ``loop`` makes every call at once from a running
IOLoop, alternately with a callback and awaited; ``thread`` makes them with
callbacks from a plain thread, whose answers come on the connection's I/O thread.

As a program it prints one JSON line: the counts, ``seconds`` and the connection's
``len()`` afterwards.  Runs on Python 2.7 and 3.
"""

from __future__ import print_function

import json
import sys
import time

from faultkit import CompactTally, classify
from support import new_io_loop
from tornado import gen
from tornado.concurrent import Future
from tornado.util import TimeoutError as LoopTimeout

STYLES = ('loop', 'thread')


class Burst(object):
    """``count`` echo calls and their accounting."""

    def __init__(self, count):
        self.count = count
        self.tally = CompactTally(count)
        self.seconds = None
        self.completions = 0
        # Called on the completion that makes ``count`` (loop bursts wait on it).
        self.on_last = None

    def record(self, number, result):
        category = classify(result)
        if category == 'answered' and result != {'i': number}:
            category = 'errors'
        self.tally.complete(number, category, result)
        self.completions += 1
        if self.completions == self.count and self.on_last is not None:
            self.on_last()

    def callback(self, number):
        return lambda result: self.record(number, result)

    def counts(self):
        counts = self.tally.counts()
        counts['seconds'] = round(self.seconds or 0.0, 2)
        return counts


def from_loop(connection, count, timeout):
    """Make ``count`` calls at once from a fresh running IOLoop; return the Burst."""
    burst = Burst(count)
    loop = new_io_loop()

    @gen.coroutine
    def run():
        started = time.time()
        # Every completion runs on this loop, so the count needs no lock here.
        everything = Future()
        burst.on_last = lambda: everything.set_result(None)
        futures = []
        for _ in range(count):
            number = burst.tally.register()
            if number % 2:
                connection.invoke('echo', {'i': number}, callback=burst.callback(number),
                                  timeout=timeout)
            else:
                futures.append((number, connection.invoke('echo', {'i': number},
                                                          timeout=timeout,
                                                          **{'await': True})))
        for number, future in futures:
            future.add_done_callback(lambda done, number=number: burst.record(number,
                                                                              done.result()))
        yield everything
        burst.seconds = time.time() - started

    try:
        loop.run_sync(run, timeout=2 * timeout + 10)
    except LoopTimeout:
        pass  # a call never completed: the counts show it as lost
    finally:
        loop.close(all_fds=True)
    return burst


def from_thread(connection, count, timeout):
    """Make ``count`` callback calls from this thread (no loop); return the Burst."""
    burst = Burst(count)
    started = time.time()
    for _ in range(count):
        number = burst.tally.register()
        connection.invoke('echo', {'i': number}, callback=burst.callback(number),
                          timeout=timeout)
    # A call expires between timeout and twice that: every one is done by then.
    burst.tally.wait_all(2 * timeout + 5)
    burst.seconds = time.time() - started
    return burst


def run(connection, count, style, timeout):
    if style == 'loop':
        return from_loop(connection, count, timeout)
    if style == 'thread':
        return from_thread(connection, count, timeout)
    raise ValueError('style must be one of %s, not %r' % (STYLES, style))


def main(address, count, style, timeout='60'):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    connection = ZMQWorkerConnection(address, timeout=float(timeout))
    try:
        counts = run(connection, int(count), style, float(timeout)).counts()
        counts['pending_after'] = len(connection)
    finally:
        connection.close()
    print(json.dumps(counts, sort_keys=True))
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
