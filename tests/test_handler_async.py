"""Asynchronous and coroutine methods on a real TotoHandler: answers from other threads,
HEAD, connection close, the before/after hooks, redirects and events on the main loop."""

import logging
import socket
import threading

import pytest

from support import DEFAULT_WAIT, free_port
from websupport import ThreadResult, WebServer, json_body
from web_methods import _state

ERROR_SERVER = 1000


@pytest.fixture(scope='module')
def server():
    with WebServer() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state():
    _state.reset()
    yield
    _state.reset()


def test_an_asynchronous_method_answers_from_another_thread(server):
    # On Tornado 5 and 6 (1.0.12 hung on Tornado 5: respond() ran on a loop nobody ran).
    assert server.call('later', {'value': 42, 'delay': 0.02}).json == {'result': {'later': 42}}


def test_an_asynchronous_error_is_answered(server):
    answer = server.call('later', {'error': 'too late', 'delay': 0.01})
    assert answer.json == {'error': {'code': 4343, 'value': 'too late'}}


def test_concurrent_asynchronous_requests_each_get_their_own_answer(server):
    calls = [ThreadResult(server.call, 'later', {'value': number, 'delay': 0.01 * (number % 4)})
             for number in range(20)]
    answers = [call.wait().json for call in calls]
    assert answers == [{'result': {'later': number}} for number in range(20)]


def test_an_asynchronous_method_that_returns_a_value_is_answered_at_once(server):
    assert server.call('later_value').json == {'result': {'now': True, 'async': False}}


def test_an_asynchronous_method_may_respond_before_invoke_returns(server):
    assert server.call('respond_inside').json == {'result': 'inside'}


def test_async_is_true_once_an_asynchronous_invoke_has_returned(server):
    assert server.call('async_flag').json == {'result': {'during_invoke': False,
                                                         'after_invoke': True}}


def test_a_coroutine_method_is_awaited(server):
    assert server.call('coroutine_method').json == {'result': {'slept': True}}


def test_a_failing_coroutine_is_an_error_answer(server):
    assert server.call('coroutine_method', {'fail': True}).json == {
        'error': {'code': 4545, 'value': 'coroutine failed'}}


def test_head_waits_for_an_asynchronous_method(server):
    # 1.0.12 finished a HEAD at once, with no Content-Type of the answer.
    answer = server.request('HEAD', '/api/later?delay=0.05')
    assert answer.status == 200
    assert answer.body == b''
    assert answer.header_values('Content-Type')[-1] == 'application/json'


def test_a_second_answer_is_dropped(server, caplog):
    with caplog.at_level(logging.WARNING, logger='toto.handler'):
        assert server.call('twice').json == {'result': 'first'}
        assert _state.event('twice.done').wait(DEFAULT_WAIT)
        assert server.call('echo', {'still': 'serving'}).json == {'result': {'still': 'serving'}}
    assert any('answered twice' in record.getMessage() for record in caplog.records)


def test_a_closed_connection_calls_the_method_modules_hook(server):
    client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
    body = json_body({'method': 'closing', 'parameters': {'tag': 'bye'}})
    client.sendall(b'POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                   b'Content-Length: ' + str(len(body)).encode('ascii') + b'\r\n\r\n' + body)
    assert _state.event('closing.invoked').wait(DEFAULT_WAIT)
    client.close()
    assert _state.event('closing.closed').wait(DEFAULT_WAIT)
    assert _state.values['closing.closed'] == ['bye']
    assert server.call('echo', {'after': 1}).json == {'result': {'after': 1}}


def test_an_answer_after_the_client_left_is_dropped_quietly(server, caplog):
    client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
    body = json_body({'method': 'twice'})
    with caplog.at_level(logging.WARNING, logger='toto.handler'):
        client.sendall(b'POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: '
                       + str(len(body)).encode('ascii') + b'\r\n\r\n' + body)
        client.close()
        assert _state.event('twice.done').wait(DEFAULT_WAIT)
        assert server.post('/api/echo', {}).json == {'result': {}}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# -- hooks -----------------------------------------------------------------------------------

class HookRecorder(object):
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.after_called = threading.Event()

    def before(self, handler, transaction_id, method):
        with self.lock:
            self.calls.append(('before', type(handler).__name__, transaction_id, method))

    def after(self, handler, transaction_id):
        with self.lock:
            self.calls.append(('after', type(handler).__name__, transaction_id,
                               handler._responded or handler._finished))
        self.after_called.set()

    def hooks(self):
        # Plain functions, as apps give them: a hook is stored as a class attribute, so it
        # becomes a method of the handler (and gets the handler first).
        def before(handler, transaction_id, method):
            self.before(handler, transaction_id, method)

        def after(handler, transaction_id):
            self.after(handler, transaction_id)
        return {'set_before_handler': before, 'set_after_handler': after}


def test_before_and_after_hooks_get_the_handler_and_the_transaction_id():
    recorder = HookRecorder()
    with WebServer(hooks=recorder.hooks()) as server:
        server.call('echo', {'a': 1})
    (before, after) = recorder.calls
    assert before[0] == 'before' and before[1].startswith('TestTotoHandler')
    assert before[3] == 'echo'
    assert after[:3] == ('after', before[1], before[2])


def test_the_after_hook_runs_once_an_asynchronous_method_answered():
    recorder = HookRecorder()
    with WebServer(hooks=recorder.hooks()) as server:
        assert server.call('later', {'value': 1, 'delay': 0.05}).json == \
            {'result': {'later': 1}}
    assert [call[0] for call in recorder.calls] == ['before', 'after']
    assert recorder.calls[1][3] is True  # the answer was written first


def test_batch_hooks_have_one_call_for_the_batch_and_one_per_entry():
    recorder = HookRecorder()
    with WebServer(hooks=recorder.hooks()) as server:
        server.post('/api', {'batch': {'a': {'method': 'echo'},
                                       'b': {'method': 'later', 'parameters': {'delay': 0.01}}}})
    kinds = [(call[0], call[3]) for call in recorder.calls if call[0] == 'before']
    assert kinds == [('before', '<batch>'), ('before', 'echo'), ('before', 'later')]
    batch_id = recorder.calls[0][2]
    entry_ids = set(call[2] for call in recorder.calls[1:] if call[0] == 'before')
    after_ids = [call[2] for call in recorder.calls if call[0] == 'after']
    assert len(after_ids) == 3 and after_ids[-1] == batch_id
    assert set(after_ids[:2]) == entry_ids and batch_id not in entry_ids


def test_error_redirect_redirects_and_the_after_hook_still_runs():
    recorder = HookRecorder()
    with WebServer(hooks=recorder.hooks()) as server:
        answer = server.call('redirecting')
        assert answer.status == 302
        assert answer.header('Location') == '/moved'
        assert answer.body == b''
        # An error the map does not name is answered as usual.
        assert server.call('redirecting', {'code': 5}).json == {
            'error': {'code': 5, 'value': 'redirect me'}}
    assert [call[0] for call in recorder.calls] == ['before', 'after', 'before', 'after']


# -- handler attributes ------------------------------------------------------------------------

def test_the_handler_has_1_0_12s_attributes(server):
    result = server.call('attributes').json['result']
    assert result == {
        'db_connection': True, 'db': 'None', 'bson': True, 'msgpack': True,
        'response_type': 'application/json',
        'body': {'method': 'attributes', 'parameters': {}},
        'registered_event_handlers': [], 'headers_only': False, 'transaction_id': True,
        'async': False, 'session': None}


def test_head_sets_headers_only(server):
    assert server.request('HEAD', '/api/attributes').status == 200
    assert server.get('/api/attributes').json['result']['headers_only'] is False


# -- events ------------------------------------------------------------------------------------

@pytest.fixture
def event_server():
    from toto.events import EventManager

    class TestEvents(EventManager):
        pass

    address = 'tcp://127.0.0.1:%d' % free_port()
    with WebServer(event_mode='on') as server:
        server.handler_class.event_manager = TestEvents
        manager = TestEvents.instance()
        manager.address = address
        server.run_on_loop(manager.start_listening)
        manager.register_server(address)
        try:
            yield server, manager
        finally:
            manager.close()


def test_event_handlers_answer_a_long_poll_on_the_main_loop(event_server):
    server, manager = event_server
    waiting = ThreadResult(server.call, 'wait_event', {'name': 'news', 'deregister': True})
    assert _state.event('wait_event.registered').wait(DEFAULT_WAIT)
    assert server.call('send_event', {'name': 'news', 'args': {'n': 1}}).json == \
        {'result': {'sent': 'news'}}
    assert waiting.wait().json == {'result': {'event': {'n': 1}}}


def test_handlers_registered_to_deregister_are_gone_when_the_request_finishes(event_server):
    server, manager = event_server
    client = socket.create_connection(('127.0.0.1', server.port), DEFAULT_WAIT)
    body = json_body({'method': 'wait_event', 'parameters': {'name': 'gone', 'deregister': 1}})
    client.sendall(b'POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: '
                   + str(len(body)).encode('ascii') + b'\r\n\r\n' + body)
    assert _state.event('wait_event.registered').wait(DEFAULT_WAIT)
    assert manager._handlers.get('gone')
    client.close()

    def handlers_left():
        return bool(manager._handlers.get('gone'))

    from support import wait_until
    wait_until(lambda: not server.run_on_loop(handlers_left))


def test_without_events_registering_a_handler_is_a_clear_error(server):
    answer = server.call('wait_event', {'name': 'x'})
    assert answer.json['error']['code'] == ERROR_SERVER
    assert 'event_mode' in answer.json['error']['value']
