"""How the worker service hands calls to its processes (SPEC 6; issue 10).

Balanced dispatch (the default): the router sends a call only to a worker process
with room for it, coroutine methods run side by side in a process, and the router
stops sending to a process that died.  ``--dispatch=queue``: the original protocol,
checked against peers that speak it with plain pyzmq sockets (a ``REP`` worker and a
queue device), as the original package's processes would.
"""

import os
import pickle
import signal
import threading

import pytest
import zmq
from support import wait_until
from workerproc import ServiceGroup, call, pids_answering, running, wait_for_answer


@pytest.fixture
def services(tmp_path):
    with ServiceGroup(str(tmp_path)) as group:
        yield group


def invoke_all(connection, method, parameters_list, timeout=10.0):
    """Send every call at once; return the answers in order."""
    futures = [connection.invoke(method, parameters, timeout=timeout, await_=True)
               for parameters in parameters_list]
    return [future.result(2 * timeout + 5) for future in futures]


# -- balanced dispatch -------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_quick_calls_go_to_the_free_process_while_another_is_held_by_a_slow_call(services):
    service = services.start(processes=2)
    connection = services.connect(service.address)
    pids = set(pids_answering(connection, 2, logs=services.logs))
    gate = services.path('gate')
    slow = connection.invoke('blocks', {'gate': gate}, timeout=30, await_=True)

    # Until the slow call is in a process, a quick call may land there first.
    wait_until(lambda: len(set(call(connection, 'pid', timeout=2)['pid']
                               for _ in range(4))) == 1, timeout=10)
    answers = [call(connection, 'pid', timeout=2) for _ in range(40)]

    assert not slow.done(), 'the slow call is still held by its process'
    free = set(answer['pid'] for answer in answers)
    assert len(free) == 1 and free < pids, answers
    open(gate, 'w').close()
    held = slow.result(30)
    assert held['gate_opened'] and held['pid'] in pids - free


@pytest.mark.timeout(60)
def test_queue_mode_sends_calls_in_turn_even_to_a_process_held_by_a_slow_call(services):
    # The original's behaviour, kept by --dispatch=queue: the contrast with the above.
    service = services.start(processes=2, args=['--dispatch=queue'])
    connection = services.connect(service.address)
    pids_answering(connection, 2, logs=services.logs)
    gate = services.path('gate')
    slow = connection.invoke('blocks', {'gate': gate}, timeout=30, await_=True)

    quick = [connection.invoke('pid', {}, timeout=30, await_=True) for _ in range(10)]
    answered = wait_until(lambda: [f for f in quick if f.done()] if sum(
        f.done() for f in quick) >= 4 else None, timeout=10)

    assert len(answered) < len(quick), 'some quick calls wait behind the slow one'
    open(gate, 'w').close()
    assert slow.result(30)['gate_opened']
    assert all('pid' in future.result(30) for future in quick)


@pytest.mark.timeout(60)
def test_coroutine_calls_run_side_by_side_in_one_process(services):
    service = services.start(processes=1)
    connection = services.connect(service.address)

    answers = invoke_all(connection, 'gathers', [{'expect': 20, 'wait': 10.0}] * 20)

    assert [answer.get('most_at_once') for answer in answers] == [20] * 20, answers


@pytest.mark.timeout(60)
def test_method_concurrency_caps_the_coroutine_calls_a_process_runs_at_once(services):
    service = services.start(processes=1, args=['--method_concurrency=3'])
    connection = services.connect(service.address)

    # Each call waits for 9 running at once, which never happens: it gives up
    # after its wait and tells the most it saw.
    answers = invoke_all(connection, 'gathers', [{'expect': 9, 'wait': 0.3}] * 9)

    assert [answer['most_at_once'] for answer in answers] == [3] * 9, answers


@pytest.mark.timeout(60)
def test_plain_calls_still_run_one_at_a_time_beside_running_coroutines(services):
    service = services.start(processes=1)
    connection = services.connect(service.address)
    waiting = [connection.invoke('gathers', {'expect': 99, 'wait': 1.0}, timeout=10,
                                 await_=True) for _ in range(5)]

    answers = invoke_all(connection, 'echo', [{'n': n} for n in range(50)])

    assert [answer['n'] for answer in answers] == list(range(50))
    assert [future.result(15)['most_at_once'] for future in waiting] == [5] * 5


@pytest.mark.timeout(60)
def test_the_router_stops_sending_to_a_killed_worker_process(services):
    service = services.start(processes=1)
    connection = services.connect(service.address)
    first = wait_for_answer(connection, logs=services.logs)

    os.kill(first['pid'], signal.SIGKILL)
    wait_until(lambda: not running(first['pid']), timeout=10)
    # The service starts a replacement; once it answered, no call may go to
    # the dead process (the idle longest, were it still on the router's list).
    replacement = wait_for_answer(connection, logs=services.logs)
    answers = [call(connection, 'pid', timeout=2) for _ in range(30)]

    assert replacement['pid'] != first['pid']
    assert [answer.get('pid') for answer in answers] == [replacement['pid']] * 30, answers


@pytest.mark.timeout(60)
def test_a_stopped_worker_process_gets_no_calls_until_it_speaks_again(services):
    service = services.start(processes=2)
    connection = services.connect(service.address)
    pids = sorted(pids_answering(connection, 2, logs=services.logs))

    os.kill(pids[0], signal.SIGSTOP)
    try:
        wait_until(lambda: 'silent for' in service.output(), timeout=10,
                   message=lambda: 'the router did not notice the silent process\n'
                   + services.logs())
        answers = [call(connection, 'pid', timeout=2) for _ in range(20)]
    finally:
        os.kill(pids[0], signal.SIGCONT)

    assert [answer.get('pid') for answer in answers] == [pids[1]] * 20, answers
    wait_until(lambda: 'speaks again' in service.output(), timeout=10)
    assert sorted(pids_answering(connection, 2, logs=services.logs)) == pids


# -- what the router lets through --------------------------------------------------------

@pytest.mark.timeout(60)
def test_the_router_refuses_a_call_whose_frames_together_pass_the_size_limit(services):
    service = services.start(processes=1, args=['--max_message_size=100000'])
    dealer = services.raw_dealer(service.address)
    payload = pickle.dumps({'method': 'echo', 'parameters': {'n': 1}}, 2)

    # Each frame is under the limit, the call is not.
    dealer.send_multipart([b'', b'x' * 60000, b'y' * 60000])
    dealer.send_multipart([b'', b'id-2', payload])

    assert dealer.poll(10000), 'the call after the refused one is answered'
    frames = dealer.recv_multipart()
    assert frames[:2] == [b'', b'id-2'] and pickle.loads(frames[2]) == {'n': 1}
    wait_until(lambda: 'a call of 120000 bytes' in service.output(), timeout=10)
    assert not dealer.poll(200), 'the refused call gets no answer'


@pytest.mark.timeout(60)
def test_a_call_without_a_calls_frames_never_reaches_a_worker(services):
    service = services.start(processes=1)
    dealer = services.raw_dealer(service.address)

    dealer.send_multipart([b'', b'id-1', b'a', b'b', b'c'])
    dealer.send_multipart([b'no envelope'])

    assert dealer.poll(10000)
    frames = dealer.recv_multipart()
    assert frames[:2] == [b'', b'id-1']
    assert pickle.loads(frames[2])['error']['value'] == 'malformed call: 4 frames'
    wait_until(lambda: "without a call's envelope" in service.output(), timeout=10)
    assert 'pid' in call(services.connect(service.address), 'pid')


# -- --dispatch=queue against the original protocol ----------------------------------------

class _RawRepWorker(threading.Thread):
    """An original-style worker: a REP socket answering ``[id, payload]``."""

    def __init__(self, context, address):
        threading.Thread.__init__(self)
        self.daemon = True
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            if not self.socket.poll(50):
                continue
            message_id, payload = self.socket.recv_multipart()
            call = pickle.loads(payload)
            answer = {'raw_rep': True, 'method': call['method']}
            self.socket.send_multipart([message_id, pickle.dumps(answer, 2)])
        self.socket.close()


@pytest.mark.timeout(60)
def test_queue_router_serves_an_original_rep_worker(services):
    service = services.start(processes=0, args=['--dispatch=queue'], wait=False)
    context = zmq.Context()
    worker = _RawRepWorker(context, service.socket_address)
    worker.start()
    try:
        connection = services.connect(service.address)
        answer = wait_for_answer_from(connection, 'greet')
        answers = invoke_all(connection, 'greet', [{}] * 50)
    finally:
        worker.stopping.set()
        worker.join(5)
        context.term()

    assert answer == {'raw_rep': True, 'method': 'greet'}
    assert answers == [answer] * 50


@pytest.mark.timeout(60)
def test_queue_worker_serves_behind_an_original_queue_device(services):
    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    backend = context.socket(zmq.DEALER)
    address = services.tcp()
    frontend.bind(address)
    socket_address = services.ipc('device-workers')
    backend.bind(socket_address)
    device = threading.Thread(target=_run_device, args=(frontend, backend))
    device.daemon = True
    device.start()
    try:
        services.start(processes=1, address='',
                       args=['--dispatch=queue', '--worker_socket_address=' + socket_address],
                       wait=False)
        connection = services.connect(address)
        first = wait_for_answer(connection, logs=services.logs)
        answers = invoke_all(connection, 'echo', [{'n': n} for n in range(50)])
    finally:
        context.term()  # ends the device
        device.join(5)

    assert 'pid' in first
    assert [answer['n'] for answer in answers] == list(range(50))


@pytest.mark.timeout(60)
def test_balanced_router_says_why_when_only_queue_workers_connect(services):
    service = services.start(processes=0, wait=False)
    context = zmq.Context()
    worker = _RawRepWorker(context, service.socket_address)
    worker.start()
    answers = []

    def router_warned():
        # A call made before the router listens is never sent (the client's
        # links take calls only once connected), and a call the router never
        # holds gives it nothing to warn about: call until one is held.
        answers.append(call(connection, 'greet', timeout=1.0))
        return 'are the workers --dispatch=queue?' in service.output()

    try:
        connection = services.connect(service.address)
        wait_until(router_warned, timeout=20, interval=0, message=services.logs)
    finally:
        worker.stopping.set()
        worker.join(5)
        context.term()

    assert answers and all(answer == {'error': 'timeout'} for answer in answers), \
        'nobody answered the calls'


def _run_device(frontend, backend):
    try:
        zmq.proxy(frontend, backend)
    except zmq.ContextTerminated:
        pass
    finally:
        frontend.close(0)
        backend.close(0)


def wait_for_answer_from(connection, method, attempts=40):
    for _ in range(attempts):
        answer = call(connection, method, timeout=0.5)
        if 'error' not in answer:
            return answer
    raise AssertionError('no answer to %s: %r' % (method, answer))


@pytest.mark.timeout(30)
@pytest.mark.parametrize('option,reason', [
    ('--dispatch=fastest', 'dispatch must be one of balanced, queue'),
    ('--method_concurrency=0', 'method_concurrency must be a whole number from 1 to 65535'),
    ('--method_concurrency=70000', 'method_concurrency must be a whole number from 1 to 65535'),
])
def test_a_dispatch_option_out_of_range_fails_the_start_with_the_reason(services, option,
                                                                        reason):
    service = services.start(args=[option], wait=False)

    assert service.wait_exit() != 0
    assert reason in service.output(), service.describe()
    # One refusal by the service, not one failure per worker process.
    assert service.output().count(reason) == 1, service.describe()
