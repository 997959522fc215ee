"""Events in a TotoServer (``--event_mode``): the chat template's long poll across processes.

A long poll (``wait_event``, asynchronous: it registers a handler for the
``message`` event and answers with the event) waits in one process; the event is
sent by a request that another process of the server answers.  The handlers run on
the process's main loop, on Tornado 5 (Python 2.7) and 6 alike.
"""

import time

import pytest
from server_apps.serverproc import ServerGroup, call, free_port_pair, request
from test_server_process import Background


@pytest.fixture
def servers(tmp_path):
    with ServerGroup(str(tmp_path)) as group:
        yield group


def event_args(mode='on'):
    return ['--event_mode=' + mode, '--event_port=%d' % free_port_pair()]


def send_from_another_process(port, waiting_pid, message, timeout=10.0):
    """Send the event from a process other than ``waiting_pid``; return the sender's pid."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, answer = call(port, 'send_event', {'message': message,
                                                   'unless_pid': waiting_pid})
        assert status == 200, answer
        if answer['result']['sent']:
            return answer['result']['pid']
    raise AssertionError('every call reached the process of the long poll')


def test_a_long_poll_answers_with_an_event_another_process_sent(servers):
    server = servers.start(event_args(), processes=2)
    poll = Background(server.port, 'wait_event', {})
    waiting_pid = int(servers.note('waiting-', suffix='-0'))

    sender = send_from_another_process(server.port, waiting_pid, 'hello from afar')

    assert sender != waiting_pid
    assert poll.result(10) == (200, {'result': {'message': 'hello from afar',
                                                'pid': waiting_pid}})


def test_an_event_reaches_long_polls_in_every_process(servers):
    server = servers.start(event_args(), processes=2)
    polls = []
    waiting = {}
    deadline = time.time() + 10
    # Long polls until both processes hold one; each leaves a note once it waits.
    while len(set(waiting.values())) < 2 and time.time() < deadline:
        tag = len(polls)
        polls.append(Background(server.port, 'wait_event', {'tag': tag}))
        waiting[tag] = int(servers.note('waiting-', suffix='-%d' % tag))
    assert len(set(waiting.values())) == 2

    status, answer = call(server.port, 'send_event', {'message': 'to all'})

    assert answer['result']['sent']
    answers = [poll.result(10)[1]['result'] for poll in polls]
    assert answers == [{'message': 'to all', 'pid': waiting[tag]} for tag in range(len(polls))]


def test_event_mode_only_serves_events_and_no_methods(servers):
    from toto.events import EventManager, event_address
    args = event_args('only')
    event_port = int(args[1].split('=')[1])
    server = servers.start(args + ['--event_init_module=events_init'])
    sender = EventManager(serialization='pickle')
    try:
        sender.register_server(event_address('127.0.0.1', event_port))

        sender.send('message', 'only-mode')

        assert int(servers.note('event-', suffix='-only-mode')) > 0
    finally:
        sender.close()
    assert request(server.port, 'POST', '/echo', '{"parameters": {"a": 1}}')[0] == 404


def test_with_events_off_a_long_poll_is_told_events_are_off(servers):
    server = servers.start()

    status, answer = call(server.port, 'wait_event', {})

    assert status == 200
    assert answer['error']['code'] == 1000
    assert 'event_mode' in answer['error']['value']
