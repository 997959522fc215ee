"""ZMQWorkerConnection: connection changes repeated as fast as a program can make them.

Each worker address is a ZeroMQ socket (and a monitor) of the connection, and libzmq
refuses a socket past 1,023 in the process ("Too many open files").  A removed address
keeps its socket while calls sent there may still be answered, so a quick run of
changes used to pile sockets up until ``set_connections`` raised.  The workers here are
ROUTER sockets of the test that take calls and never answer, so calls stay pending all
along, as they do under load.
"""

import collections
import os
import shutil
import tempfile
import threading

import pytest
import zmq
from support import LoopThread, free_port, wait_until

# More changes than libzmq's 1,023 sockets could hold links for (three sockets a link).
CHANGES = 1500
# What the links kept open may add to the process's descriptors: 5 (libzmq's eventfd
# mailboxes) to 8 (its socket pairs, in older releases) a link, for the 32 links to
# removed addresses a connection keeps reading and the few in use.  Keeping every link
# to a removed address open for twice the timeout took thousands.
MOST_NEW_DESCRIPTORS = 400
# libzmq closes a socket on its reaper thread, after close() returns: right after a
# run of changes the count still holds sockets closed a moment ago, and on a loaded
# machine (CI runs three suites on two cores) their release trails by seconds.
REAPING_WAIT = 10.0


def open_fds():
    return len(os.listdir('/proc/self/fd'))


def descriptor_kinds():
    kinds = collections.Counter()
    for fd in os.listdir('/proc/self/fd'):
        try:
            kinds[os.readlink('/proc/self/fd/' + fd).split(':')[0]] += 1
        except OSError:
            pass  # closed while listed
    return dict(kinds)


def assert_few_descriptors_stay_open(fds_before):
    """Wait for libzmq to release the sockets closed so far; what stays must be few."""
    try:
        wait_until(lambda: open_fds() - fds_before < MOST_NEW_DESCRIPTORS, REAPING_WAIT)
    except AssertionError:
        raise AssertionError('%d new descriptors %.0f s after the changes (at most %d '
                             'expected): %r' % (open_fds() - fds_before, REAPING_WAIT,
                                                MOST_NEW_DESCRIPTORS, descriptor_kinds()))


class SilentWorkers(object):
    """ROUTER sockets on free loopback ports that take every call and answer none."""

    def __init__(self, count):
        self.context = zmq.Context()
        self.sockets = []
        self.addresses = []
        for _ in range(count):
            socket = self.context.socket(zmq.ROUTER)
            socket.setsockopt(zmq.LINGER, 0)
            address = 'tcp://127.0.0.1:%d' % free_port()
            socket.bind(address)
            self.sockets.append(socket)
            self.addresses.append(address)

    def close(self):
        for socket in self.sockets:
            socket.close(0)
        self.context.term()


@pytest.fixture
def silent_workers():
    workers = SilentWorkers(2)
    yield workers
    workers.close()


def pending_calls(connection, count):
    """Make ``count`` calls that stay unanswered; return the list their results go to."""
    results = []
    for n in range(count):
        connection.invoke('echo', {'n': n}, callback=results.append)
    return results


@pytest.mark.timeout(60)
def test_switching_between_two_workers_thousands_of_times_never_runs_out_of_sockets(
        silent_workers):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    first, second = silent_workers.addresses
    choices = [[first], [second], [first, second], []]
    connection = ZMQWorkerConnection([first, second], timeout=30.0)
    loop_thread = LoopThread(name='churn-loop')
    try:
        results = pending_calls(connection, 20)
        # A second channel: calls made on a running IOLoop have sockets of their own.
        loop_thread.run(lambda: pending_calls(connection, 20))
        fds_before = open_fds()

        for n in range(CHANGES):
            connection.set_connections(choices[n % len(choices)])
            if n % 5 == 0:  # the loop's channel follows the change at its next call
                loop_thread.run(lambda: pending_calls(connection, 1))

        assert connection.active_connections == set()
        # Before: ZMQError('Too many open files') after about 340 changes.
        assert_few_descriptors_stay_open(fds_before)
        assert len(connection) == 20 + 20 + CHANGES // 5
        assert results == []
    finally:
        connection.close()
        loop_thread.stop()
    assert len(results) == 20 and all(result == {'error': 'closed'} for result in results)


@pytest.mark.timeout(60)
def test_a_new_address_at_every_change_never_runs_out_of_sockets(silent_workers):
    from toto.zmqworkerconnection import ZMQWorkerConnection
    folder = tempfile.mkdtemp(prefix='toto-churn-')
    # Files nobody binds: ZeroMQ keeps trying them, and calls wait for a worker.
    nowhere = ['ipc://%s/%d.sock' % (folder, n) for n in range(CHANGES)]
    connection = ZMQWorkerConnection(silent_workers.addresses, timeout=30.0)
    problems = []
    try:
        pending_calls(connection, 20)
        fds_before = open_fds()

        def change_from_another_thread():
            try:
                for n, address in enumerate(nowhere):
                    connection.set_connections([address, silent_workers.addresses[n % 2]])
            except Exception as error:
                problems.append(error)
        changer = threading.Thread(target=change_from_another_thread)
        changer.start()
        for n in range(CHANGES):
            connection.invoke('echo', {'n': n})
        changer.join(50)

        assert not changer.is_alive(), 'the connection changes hung'
        # Before: ZMQError('Too many open files') after about 340 changes.
        assert problems == []
        assert_few_descriptors_stay_open(fds_before)
        assert connection.active_connections == set([nowhere[-1],
                                                     silent_workers.addresses[1]])
    finally:
        connection.close()
        shutil.rmtree(folder, ignore_errors=True)
