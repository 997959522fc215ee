"""Hostile clients against the worker service's router (issue 21, items 1, 3, 4, 5 and 9).

Each test attacks a real TotoWorkerService (its router and worker processes) over
loopback, scaled down from the issue's numbers where the mechanism is the same:

* idle connections past the router's file limit (256 here, 1,024 or 20,000 in the
  issue), then a worker process killed and restarted;
* calls of many frames whose sum passes ``--max_message_size`` (48 frames of just
  under 1 MiB here, 1,500 in the issue), one frame over the limit, and the same
  multipart call from a peer CURVE does not let in;
* one client holding more calls than the byte budget while another calls;
* floods of junk frames and of calls to a method that does not exist;
* a client that acknowledges the draining notice and never says ``done``.

Memory is the router's peak (``VmHWM`` in ``/proc/PID/status``); the numbers go to the
fault report.
"""

import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time

import pytest
from faultkit import (SERVICE_SCRIPT, Process, Service, child_env, pickled_call, raw_request,
                      zmq_call)
from support import dispatch_args, free_port, wait_until
from workerproc import running

MIB = 1024 * 1024

# -- the router's process ---------------------------------------------------------------


def router_pid(service):
    from toto.worker import service_status
    return service_status(service.control_address)['router']['pid']


def router_status(service):
    from toto.worker import service_status
    return service_status(service.control_address)['router']


def memory_kb(pid, field='VmHWM'):
    """``field`` of ``/proc/PID/status`` in kB: VmHWM is the peak resident size."""
    with open('/proc/%d/status' % pid) as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise AssertionError('no %s for %d' % (field, pid))


def lines_with(service, text):
    return [line for line in service.output().splitlines() if text in line]


def file_limited_service(lab, nofile, processes=1, args=()):
    """A zmq service whose processes start with RLIMIT_NOFILE soft = hard = ``nofile``.

    As ``lab.zmq_service``, with the limit set in the child before the service starts
    (a limit no process of the service can raise).
    """
    name = 'zmq-nofile-%d' % len(lab.processes)
    port = free_port()
    address = 'tcp://127.0.0.1:%d' % port
    code = ('import resource, sys; '
            'resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); '
            'sys.argv[0] = %r; import faultservice; faultservice.main()'
            % (nofile, nofile, SERVICE_SCRIPT))
    argv = [sys.executable, '-c', code, 'zmq', '--method_module=fault_methods',
            '--processes=%d' % processes, '--worker_bind_address=' + address,
            '--worker_socket_address=' + lab.ipc(name + '-w'),
            '--control_socket_address=' + lab.ipc(name + '-c')] + list(args)
    argv += dispatch_args(args)
    service = Service(name, argv, child_env(), lab.path(name + '.log'), lab.directory,
                      address, 'zmq')
    service.control_address = lab.ipc(name + '-c')
    lab.processes.append(service)
    service.first_answer = lab.wait_zmq_ready(service)
    return service


# -- idle ZeroMQ peers ------------------------------------------------------------------

# A ZMTP 3.0 greeting (NULL mechanism, as a client) and the READY command of a DEALER:
# what a ZeroMQ peer sends to finish the handshake.  After it these peers say nothing.
ZMTP_GREETING = (b'\xff' + b'\x00' * 8 + b'\x7f' + b'\x03\x00' + b'NULL' + b'\x00' * 16 +
                 b'\x00' + b'\x00' * 31)
_READY_BODY = b'\x05READY' + b'\x0bSocket-Type' + struct.pack('>I', 6) + b'DEALER'
ZMTP_READY = b'\x04' + struct.pack('B', len(_READY_BODY)) + _READY_BODY


class IdlePeers(object):
    """``count`` TCP connections to ``port`` that finish the ZeroMQ handshake, then idle.

    They are opened ``step`` at a time, each step once the one before has connected
    (or ``wait`` seconds have passed): a steady attacker, whose connections the
    kernel hands to the router as they come, rather than a burst that overflows the
    kernel's queue of connections and trickles in over the next half minute.
    """

    def __init__(self, port, count, step=25, wait=5.0):
        self.sockets = []
        self.greeted = 0
        deadline = time.time() + wait
        while len(self.sockets) < count:
            self._connect(port, min(step, count - len(self.sockets)), deadline)

    def _connect(self, port, count, deadline):
        poller = select.poll()
        by_fd = {}
        for _ in range(count):
            peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            peer.setblocking(False)
            peer.connect_ex(('127.0.0.1', port))
            self.sockets.append(peer)
            by_fd[peer.fileno()] = peer
            poller.register(peer, select.POLLOUT)
        while by_fd and time.time() < deadline:
            for fd, _ in poller.poll(100):
                peer = by_fd.pop(fd)
                poller.unregister(fd)
                if peer.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    try:
                        peer.send(ZMTP_GREETING + ZMTP_READY)
                        self.greeted += 1
                    except socket.error:
                        pass

    def closed_by_the_router(self):
        """How many of these connections the other end has closed."""
        closed = 0
        for peer in self.sockets:
            try:
                while True:
                    data = peer.recv(65536)
                    if not data:
                        closed += 1
                        break
            except socket.error as error:
                if error.args and error.args[0] in (socket.errno.EAGAIN,
                                                    socket.errno.EWOULDBLOCK):
                    continue
                closed += 1
        return closed

    def wait_closed(self, count, timeout):
        """Wait until the other end has closed ``count`` of these; return how many it has."""
        deadline = time.time() + timeout
        while True:
            closed = self.closed_by_the_router()
            if closed >= count or time.time() > deadline:
                return closed
            time.sleep(0.1)  # the router closes them as it reads of them

    def close(self):
        for peer in self.sockets:
            peer.close()


NOFILE = 256
IDLE_PEERS = 400   # more than the router's whole file limit


@pytest.mark.timeout(60)
def test_idle_connections_past_the_file_limit_lock_out_no_client_and_kill_no_router(
        lab, fault_report):
    service = file_limited_service(lab, NOFILE)
    port = int(service.address.rsplit(':', 1)[1])
    first_pid = service.first_answer['pid']
    router = router_pid(service)
    peers = IdlePeers(port, IDLE_PEERS)
    try:
        connection = lab.connect(service.address, timeout=3.0)
        started = time.time()
        answer = zmq_call(connection, 'pid', timeout=3.0)
        answer_seconds = time.time() - started
        # A worker process dies; the service starts another, which connects to the
        # router over ipc: the accept that aborted the router at the file limit.
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.time() + 20
        restarted = None
        while time.time() < deadline and service.is_running():
            result = zmq_call(connection, 'pid', timeout=1.0)
            if isinstance(result, dict) and result.get('pid') not in (None, first_pid):
                restarted = result['pid']
                break
        router_alive = running(router)
        # The peers past the router's cap are closed (counted among those that
        # finished connecting).
        cap = (router_status(service) or {}).get('clients_limit') or NOFILE
        closed = peers.wait_closed(peers.greeted - cap, timeout=10.0)
        more_peers = IdlePeers(port, 50)
        after_more = zmq_call(connection, 'echo', {'after': 'more peers'}, timeout=3.0)
        more_peers.close()
    finally:
        peers.close()
    cap_lines = lines_with(service, 'the most it keeps')
    fault_report('router: %d idle connections at a file limit of %d, then a worker killed'
                 % (IDLE_PEERS, NOFILE), {'sent': 3, 'answered': int(answer == {'pid': first_pid})
                                          + int(restarted is not None)},
                 greeted=peers.greeted, closed_by_router=closed, cap=cap,
                 answer_seconds=round(answer_seconds, 2), cap_log_lines=len(cap_lines))
    assert answer == {'pid': first_pid}, (answer, service.describe())
    assert restarted is not None, ('no restarted worker answered', service.describe())
    assert router_alive, 'the router died\n' + service.describe()
    assert router_pid(service) == router
    assert after_more == {'after': 'more peers'}
    assert 'Too many open files' not in service.output(), service.describe()
    # The idle peers beyond the cap were closed, and the log says so once.
    assert cap < NOFILE
    assert closed >= peers.greeted - cap, (closed, peers.greeted, cap)
    assert 1 <= len(cap_lines) <= 2, cap_lines


@pytest.mark.timeout(40)
def test_a_router_that_dies_is_started_again_and_the_service_answers_again(lab, fault_report):
    # What remains of the idle-connection attack: at a low hard file limit a
    # burst can still make libzmq abort the router (SIGABRT). The service
    # starts a new router on the same addresses; clients and worker processes
    # connect to it by themselves.
    service = lab.zmq_service(processes=1)
    connection = lab.connect(service.address, timeout=1.0)
    worker = service.first_answer['pid']
    assert zmq_call(connection, 'pid', timeout=3.0) == {'pid': worker}
    dead = router_pid(service)
    os.kill(dead, signal.SIGABRT)
    killed = time.time()
    answer = None
    deadline = killed + 20
    while time.time() < deadline:
        answer = zmq_call(connection, 'echo', {'after': 'the abort'}, timeout=1.0)
        if answer == {'after': 'the abort'}:
            break
    recovered = time.time() - killed
    fault_report('router: killed with SIGABRT (as libzmq aborts at the file limit)',
                 {'sent': 1, 'answered': int(answer == {'after': 'the abort'})},
                 seconds_to_answer_again=round(recovered, 2))
    assert answer == {'after': 'the abort'}, (answer, service.describe())
    new = router_pid(service)
    assert new != dead and running(new)
    assert zmq_call(connection, 'pid', timeout=3.0) == {'pid': worker}, \
        'the worker process did not reach the new router'
    assert lines_with(service, 'starting a new router'), service.describe()
    assert service.is_running()


# -- calls larger than the limit --------------------------------------------------------

LIMIT = MIB
FRAME = LIMIT - 4096          # each frame passes libzmq's per-frame limit
FRAMES = 48                   # together 48 times the limit


def send_oversize(dealer, message_id=b'big', flags=0):
    """A call of FRAMES frames, each under the limit: together far over it.

    Returns the tracker of its last frame (done once libzmq has let go of it).
    """
    import zmq
    frame = b'x' * FRAME
    # Only the first frame can find no room (``flags`` NOBLOCK): the rest follow it.
    dealer.send(b'', zmq.SNDMORE | flags)
    dealer.send(message_id, zmq.SNDMORE)
    for _ in range(FRAMES - 1):
        dealer.send(frame, zmq.SNDMORE, copy=False)
    return dealer.send(frame, copy=False, track=True)


def wait_settled(service, pid, seconds=1.0, timeout=30.0):
    """Wait until the router's refusals and resident size stop changing for ``seconds``."""
    last = None
    since = time.time()
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = (router_status(service)['refused'], memory_kb(pid, 'VmRSS') // 4096)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= seconds:
            return last[0]
        time.sleep(0.1)  # sampling interval of the router's counters
    raise AssertionError('the router never settled\n' + service.describe())


def wait_steady(read, seconds=0.3, timeout=20.0):
    """Wait until ``read()`` is above 0 and has not grown for ``seconds``; return it."""
    deadline = time.time() + timeout
    last, since = read(), time.time()
    while time.time() < deadline:
        time.sleep(0.05)  # sampling interval
        value = read()
        if value > last:
            last, since = value, time.time()
        elif last > 0 and time.time() - since >= seconds:
            return last
    raise AssertionError('never steady (last %r)' % (last,))


class SteadyCaller(object):
    """Calls ``echo`` from a thread every ``interval`` s; keeps each call's latency."""

    def __init__(self, connection, interval=0.1, timeout=5.0):
        self.connection = connection
        self.interval = interval
        self.timeout = timeout
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name='steady-caller')
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.time()
            answer = zmq_call(self.connection, 'echo', {'n': n}, timeout=self.timeout)
            if answer == {'n': n}:
                self.latencies.append(time.time() - started)
            else:
                self.failures.append(answer)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self.thread.join(3 * self.timeout + 5)
        return self


@pytest.mark.timeout(90)
def test_oversize_multipart_calls_cost_one_call_at_most_and_others_are_answered(
        lab, fault_report):
    service = lab.zmq_service(args=['--max_message_size=%d' % LIMIT])
    router = router_pid(service)
    caller = SteadyCaller(lab.connect(service.address, timeout=5.0))
    attacker = lab.raw_dealer(service.address)
    start = memory_kb(router)
    began = time.time()

    send_oversize(attacker).wait(20)
    refused = wait_settled(service, router)
    one = memory_kb(router) - start
    # Five more in a row, each sent once the router has dropped the one before: what a
    # dropped call held is given back, so they add nothing to the peak.
    for n in range(5):
        send_oversize(attacker, b'big-%d' % n).wait(20)
        refused += 1
        wait_until(lambda count=refused: router_status(service)['refused'] >= count, 20,
                   message=service.describe)
    wait_settled(service, router)
    five = memory_kb(router) - start - one
    # Five more sent back to back: libzmq's I/O thread takes in the next call while the
    # router drops the one before, as fast as loopback carries it. How many it holds at
    # once depends on how far the router falls behind (on a loaded machine, one more
    # call's worth: CI runs 21 and 25), so it is reported, not asserted.
    for n in range(5):
        tracker = send_oversize(attacker, b'burst-%d' % n)
    tracker.wait(20)
    wait_settled(service, router)
    burst = memory_kb(router) - start - one - five
    caller.stop()
    refusals = lines_with(service, 'bytes (the limit is %d)' % LIMIT)
    intervals = 1 + int((time.time() - began) // 10)  # a refusal line at most every 10 s
    fault_report('router: calls of %d frames of %d bytes (limit %d)' % (FRAMES, FRAME, LIMIT),
                 {'sent': len(caller.latencies) + len(caller.failures) + 11,
                  'answered': len(caller.latencies), 'errors': 11},
                 peak_growth_one_mb=one // 1024, peak_growth_five_paced_mb=five // 1024,
                 peak_growth_five_at_once_mb=burst // 1024,
                 refusal_log_lines=len(refusals),
                 slowest_other_call=round(max(caller.latencies or [0]), 2))
    assert caller.latencies and not caller.failures, caller.failures[:3]
    assert max(caller.latencies) < 2.0, sorted(caller.latencies)[-3:]
    assert router_status(service)['refused'] == 11, service.describe()
    # One costs about what libzmq buffers for it (48 MiB); five more add no more.
    assert one < 2 * FRAMES * MIB // 1024, one
    assert five <= max(one // 2, 16 * 1024), (one, five)
    assert 1 <= len(refusals) <= intervals, refusals


@pytest.mark.timeout(60)
def test_a_frame_over_the_limit_is_refused_before_libzmq_buffers_it(lab, fault_report):
    # libzmq's ZMQ_MAXMSGSIZE reads each frame's length before its body: the frame is
    # refused (and the connection closed) before any of it is kept.
    service = lab.zmq_service(args=['--max_message_size=%d' % LIMIT])
    router = router_pid(service)
    start = memory_kb(router)
    attacker = lab.raw_dealer(service.address)
    attacker.send_multipart([b'', b'one-frame', b'x' * (FRAMES * FRAME)], copy=False,
                            track=True).wait(20)
    answer = raw_request(lab.raw_dealer(service.address),
                         [b'', b'after', pickled_call('echo', {'ok': 1})])
    growth = memory_kb(router) - start
    fault_report('router: one frame of %d bytes (limit %d)' % (FRAMES * FRAME, LIMIT),
                 {'sent': 2, 'answered': 1, 'errors': 1}, peak_growth_mb=growth // 1024)
    assert answer is not None and pickle.loads(answer[2]) == {'ok': 1}
    assert growth < 16 * 1024, growth


def curve_keys(directory):
    import shutil

    import zmq.auth
    certificates = os.path.join(directory, 'certificates')
    authorized = os.path.join(directory, 'authorized')
    os.mkdir(certificates)
    os.mkdir(authorized)
    keys = dict((name, zmq.auth.create_certificates(certificates, name))
                for name in ('server', 'client', 'intruder'))
    shutil.copy(keys['client'][0], authorized)
    return keys, authorized


@pytest.mark.timeout(60)
def test_a_peer_curve_does_not_let_in_cannot_make_the_router_buffer_a_call(lab, fault_report):
    import zmq
    import zmq.auth
    if not zmq.has('curve'):
        pytest.skip('libzmq without CURVE')
    keys, authorized = curve_keys(lab.directory)
    client = (keys['server'][0], keys['client'][0], keys['client'][1])
    service = lab.zmq_service(probe={'curve': client}, args=[
        '--max_message_size=%d' % LIMIT, '--curve_secret_key=' + keys['server'][1],
        '--curve_authorized_keys=' + authorized])
    router = router_pid(service)
    start = memory_kb(router)
    context = zmq.Context()
    try:
        intruder = context.socket(zmq.DEALER)
        intruder.setsockopt(zmq.LINGER, 0)
        public, secret = zmq.auth.load_certificate(keys['intruder'][1])
        intruder.curve_publickey, intruder.curve_secretkey = public, secret
        intruder.curve_serverkey = zmq.auth.load_certificate(keys['server'][0])[0]
        monitor = intruder.get_monitor_socket()
        intruder.connect(service.address)
        queued = 0
        for n in range(3):
            try:
                send_oversize(intruder, b'intruder-%d' % n, zmq.NOBLOCK)
                queued += 1
            except zmq.Again:
                break  # its handshake has failed already: libzmq has nowhere to send
        # A CURVE client sends nothing before its handshake, which the router refuses:
        # what it queued goes nowhere.
        refused = handshake_refused(monitor, timeout=10.0)
        answer = zmq_call(lab.connect(service.address, timeout=3.0, curve=client), 'echo',
                          {'ok': 1}, timeout=3.0)
    finally:
        context.destroy(0)
    growth = memory_kb(router) - start
    fault_report('router: %d-frame calls from a peer CURVE refuses' % FRAMES,
                 {'sent': 4, 'answered': 1, 'errors': 3}, peak_growth_mb=growth // 1024,
                 queued_by_the_intruder=queued)
    assert refused, 'the intruder was never refused'
    assert answer == {'ok': 1}
    assert growth < 16 * 1024, growth


def handshake_refused(monitor, timeout):
    """Wait for the socket ``monitor`` watches to be refused in its handshake."""
    import zmq
    failed = (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
              zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if monitor.poll(100):
            kind = struct.unpack('=H', monitor.recv_multipart()[0][:2])[0]
            if kind in failed:
                return True
    return False


# -- held calls -------------------------------------------------------------------------

BUDGET = 8 * MIB
HOG_CALLS = 2000
HOG_PAD = 64 * 1024


@pytest.mark.timeout(60)
def test_held_calls_keep_to_the_byte_budget_and_a_flooding_client_starves_no_other(
        lab, fault_report):
    import zmq
    service = lab.zmq_service(args=['--max_held_bytes=%d' % BUDGET,
                                    '--max_message_size=%d' % (2 * MIB)])
    router = router_pid(service)
    start = memory_kb(router)
    context = zmq.Context()
    hog = context.socket(zmq.DEALER)
    hog.setsockopt(zmq.LINGER, 0)
    hog.setsockopt(zmq.SNDHWM, 0)  # sends as fast as it likes: nothing waits here
    hog.connect(service.address)
    pad = u'x' * HOG_PAD
    try:
        for n in range(HOG_CALLS):
            hog.send_multipart([b'', b'hog-%d' % n,
                                pickled_call('late', {'seconds': 0.005, 'pad': pad})])
        # The router reads the hog's calls until it stops (at its budget, or once it
        # has them all): then they pile up no more.
        held = wait_steady(lambda: router_status(service)['calls_queued'])
        started = time.time()
        answer = zmq_call(lab.connect(service.address, timeout=4.0), 'echo', {'n': 'other'},
                          timeout=4.0)
        other_seconds = time.time() - started
        growth = memory_kb(router) - start
    finally:
        context.destroy(0)
    fault_report('router: one client sends %d calls of %d KiB to a busy worker (budget %d MiB)'
                 % (HOG_CALLS, HOG_PAD // 1024, BUDGET // MIB),
                 {'sent': 1, 'answered': int(answer == {'n': 'other'})},
                 peak_growth_mb=growth // 1024, held_calls=held,
                 other_call_seconds=round(other_seconds, 2))
    assert answer == {'n': 'other'}, (answer, held)
    assert other_seconds < 3.0, other_seconds
    # What the router holds stays near the budget, however much the hog sends
    # (its other calls wait in its own queues and libzmq's bounded one).
    assert held * HOG_PAD <= BUDGET + 2 * MIB, held
    assert growth < HOG_CALLS * HOG_PAD // 1024 // 2, growth


# -- floods -----------------------------------------------------------------------------

FLOOD_SECONDS = 3.0
_FLOOD_CODE = '''
import sys, time, zmq
context = zmq.Context()
dealer = context.socket(zmq.DEALER)
dealer.setsockopt(zmq.LINGER, 0)
dealer.connect(sys.argv[1])
end = time.time() + float(sys.argv[2])
sent = 0
while time.time() < end:
    for _ in range(1000):
        dealer.send(b'junk')
    sent += 1000
print('SENT %d' % sent)
sys.stdout.flush()
dealer.close(0)
context.term()
'''


@pytest.mark.timeout(60)
def test_a_junk_flood_logs_a_line_per_interval_and_answers_still_flow(lab, fault_report):
    service = lab.zmq_service()
    caller = SteadyCaller(lab.connect(service.address, timeout=5.0), interval=0.05)
    flooder = Process('flooder', [sys.executable, '-c', _FLOOD_CODE, service.address,
                                  str(FLOOD_SECONDS)],
                      child_env(), lab.path('flooder.log'), lab.directory)
    lab.processes.append(flooder)
    flooder.wait_ended(FLOOD_SECONDS + 20, 'flooding')
    caller.stop()
    sent = int(flooder.output().split('SENT')[1].split()[0])
    junk_lines = lines_with(service, "without a call's envelope")
    fault_report('router: %.0f s flood of one-frame junk messages' % FLOOD_SECONDS,
                 {'sent': len(caller.latencies) + len(caller.failures),
                  'answered': len(caller.latencies)},
                 junk_sent=sent, junk_log_lines=len(junk_lines),
                 slowest_answer=round(max(caller.latencies or [0]), 2))
    assert not caller.failures, (caller.failures[:3], len(caller.latencies))
    assert len(caller.latencies) >= 10, caller.latencies
    assert max(caller.latencies) < 1.0, sorted(caller.latencies)[-3:]
    assert 1 <= len(junk_lines) <= 2, junk_lines[:3]


@pytest.mark.timeout(60)
def test_calls_to_a_missing_method_log_a_line_per_interval(lab, fault_report):
    service = lab.zmq_service()
    dealer = lab.raw_dealer(service.address)
    count = 2000
    started = time.time()
    for n in range(count):
        dealer.send_multipart([b'', b'missing-%d' % n, pickled_call('no_such_method', {})])
    answers = 0
    while answers < count and dealer.poll(10000):
        frames = dealer.recv_multipart()
        if 'no_such_method' in pickle.loads(frames[2])['error']['value']:
            answers += 1
    seconds = time.time() - started
    wait_until(lambda: lines_with(service, 'no_such_method'), timeout=10)
    missing_lines = lines_with(service, 'no_such_method')
    fault_report('worker: %d calls to a method that does not exist' % count,
                 {'sent': count, 'errors': answers}, log_lines=len(missing_lines),
                 seconds=round(seconds, 2))
    assert answers == count
    assert 1 <= len(missing_lines) <= 2, (len(missing_lines), missing_lines[:3])


# -- draining ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_client_that_acknowledges_the_drain_and_never_says_done_does_not_hold_the_stop(
        lab, fault_report):
    from toto._protocol import DRAINING_ID
    service = lab.zmq_service(args=['--shutdown_timeout=15'])
    dealer = lab.raw_dealer(service.address)
    answer = raw_request(dealer, [b'', b'first', pickled_call('pid', {})])
    assert answer is not None
    started = time.time()
    os.kill(service.pid, signal.SIGTERM)
    notices = 0
    # Reads until the service has ended and nothing more is waiting: on a loaded machine
    # this process may first poll after the router has stopped waiting for it (CI run
    # 30), and the notice it sent is still here to be read.
    while time.time() - started < 30:
        if dealer.poll(50):
            frames = dealer.recv_multipart()
            if frames[1] == DRAINING_ID:
                notices += 1
                # "Read": nothing more comes from here; but never "done".
                dealer.send_multipart([b'', DRAINING_ID, b''])
        elif not service.is_running():
            break
    service.wait_ended(30, 'after SIGTERM')
    seconds = time.time() - started
    fault_report('router: a client acknowledges the drain and never says done',
                 {'sent': 1, 'answered': 1}, stop_seconds=round(seconds, 2),
                 notices=notices)
    assert notices >= 1
    assert seconds < 6.0, seconds
