"""toto.events: EventManager on real sockets, and events to and from Toto 1.0.12.

Every manager here listens on a free 127.0.0.1 port.  The interop tests run the
original ``toto==1.0.12`` under the interpreter named by ``TOTO_ORACLE_PYTHON``
(Python 2.7 with tornado 4.5.3 and pyzmq); without it they are skipped, or fail
when ``CI`` is set.
"""

import binascii
import collections
import datetime
import decimal
import logging
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
import zlib

import pytest
import six
import zmq
from six.moves import queue
from tornado.options import options

from support import DEFAULT_WAIT, LoopThread, Recorder, free_port, wait_until

from toto import events
from toto.events import EventManager, configure_for_process, event_address

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(events.__file__)))
EVENT_OPTIONS = ('event_port', 'remote_event_receivers', 'event_mode', 'event_init_module',
                 'event_bind_host', 'event_serialization', 'event_pickle_globals',
                 'event_max_size', 'event_send_timeout', 'event_curve_secret_key',
                 'event_curve_server_key', 'event_curve_authorized_keys')
needs_curve = pytest.mark.skipif(not zmq.has('curve'), reason='libzmq without CURVE')


class Point(object):
    """An application class sent inside an event (allowed only when listed)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __ne__(self, other):
        return not self == other


class FakeRequest(object):
    """Stands in for a request handler: only ``_finished`` is read."""

    def __init__(self, finished):
        self._finished = finished


# -- fixtures and helpers ---------------------------------------------------------------

@pytest.fixture
def managers():
    """Makes EventManagers that are closed when the test ends."""
    made = []

    def make(*args, **kwargs):
        manager = EventManager(*args, **kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        assert manager.stop_listening(), 'the listener thread did not stop'
        manager.close()


@pytest.fixture
def listener(managers):
    """Makes a manager listening on a free loopback port (address in ``.address``)."""
    def make(**kwargs):
        manager = managers(loopback_address(), **kwargs)
        manager.start_listening()
        return manager
    return make


@pytest.fixture
def sender(managers):
    """Makes a manager that sends to the given listeners."""
    def make(*targets, **kwargs):
        manager = managers(**kwargs)
        for target in targets:
            manager.register_server(target if isinstance(target, str) else target.address)
        return manager
    return make


@pytest.fixture
def raw_push():
    """Plain PUSH sockets connected to an address, for frames no EventManager sends."""
    context = zmq.Context()
    sockets = []

    def connect(address):
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(address)
        sockets.append(push)
        return push

    yield connect
    for push in sockets:
        push.close()
    context.term()


@pytest.fixture
def event_options():
    """The event options, restored after the test."""
    saved = dict((name, getattr(options, name)) for name in EVENT_OPTIONS)
    yield options
    for name, value in saved.items():
        setattr(options, name, value)


def loopback_address():
    return event_address('127.0.0.1', free_port())


def two_free_ports():
    """A port p such that p and p + 1 are both free on 127.0.0.1."""
    for _ in range(50):
        port = free_port()
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(('127.0.0.1', port + 1))
            return port
        except socket.error:
            continue
        finally:
            probe.close()
    raise AssertionError('no two consecutive free ports found')


def frame(event, protocol=0):
    return zlib.compress(pickle.dumps(event, protocol))


def warnings_from_events(caplog):
    return [record.getMessage() for record in caplog.records
            if record.name == 'toto.events' and record.levelno == logging.WARNING]


def settle():
    """A grace period for events that must NOT arrive (after a later one did)."""
    time.sleep(0.3)


# -- delivery and handlers --------------------------------------------------------------

def test_event_runs_a_thread_handler_on_the_listener_thread(listener, sender):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('greeting', recorder)

    assert sender(receiver).send('greeting', {'text': u'h\xe9llo'}) == 1

    assert recorder.wait() == {'text': u'h\xe9llo'}
    assert recorder.threads[0].name == 'toto-events-listener'
    assert recorder.threads[0] is not threading.current_thread()


def test_main_loop_handler_runs_on_the_io_loop_given_to_the_manager(listener, sender):
    loop_thread = LoopThread(name='main-loop')
    try:
        receiver = listener(io_loop=loop_thread.io_loop)
        recorder = Recorder()
        receiver.register_handler('greeting', recorder, run_on_main_loop=True)
        sender(receiver).send('greeting', 'hi')
        assert recorder.wait() == 'hi'
        assert recorder.threads == [loop_thread.thread]
    finally:
        loop_thread.stop()


def test_a_main_loop_handler_gets_its_own_events_arguments_when_later_ones_came_first(
        listener, sender):
    # 1.0.12's callback read the listener's loop variable when the main loop ran it, so an
    # event decoded meanwhile replaced the arguments (tests/test_oracle_events.py).
    loop_thread = LoopThread(name='main-loop')
    loop_busy = threading.Event()
    try:
        receiver = listener(io_loop=loop_thread.io_loop)
        on_loop, on_thread = Recorder(), Recorder()
        receiver.register_handler('loop_event', on_loop, run_on_main_loop=True)
        receiver.register_handler('thread_event', on_thread)
        loop_thread.io_loop.add_callback(loop_busy.wait, DEFAULT_WAIT)
        events_sender = sender(receiver)
        events_sender.send('loop_event', {'n': 1})
        events_sender.send('thread_event', {'n': 2})
        assert on_thread.wait() == {'n': 2}  # decoded after loop_event, loop still busy
        assert on_loop.count == 0
        loop_busy.set()
        assert on_loop.wait() == {'n': 1}
    finally:
        loop_busy.set()
        loop_thread.stop()


def test_start_listening_takes_the_io_loop_of_its_thread(managers, sender):
    loop_thread = LoopThread(name='main-loop')
    try:
        receiver = managers(loopback_address())
        loop_thread.run(receiver.start_listening)
        assert receiver.io_loop is loop_thread.io_loop
        recorder = Recorder()
        receiver.register_handler('greeting', recorder, run_on_main_loop=True)
        sender(receiver).send('greeting', 'hi')
        assert recorder.wait() == 'hi'
        assert recorder.threads == [loop_thread.thread]
    finally:
        loop_thread.stop()


def test_the_first_main_loop_handler_names_the_loop_when_none_was_given(listener, sender):
    loop_thread = LoopThread(name='main-loop')
    try:
        receiver = listener()
        receiver.io_loop = None            # as if start_listening ran before any loop
        recorder = Recorder()
        # A request handler registering from the loop it runs on.
        loop_thread.run(lambda: receiver.register_handler('greeting', recorder,
                                                          run_on_main_loop=True))
        assert receiver.io_loop is loop_thread.io_loop
        sender(receiver).send('greeting', 'hi')
        assert recorder.wait() == 'hi'
        assert recorder.threads == [loop_thread.thread]
    finally:
        loop_thread.stop()


def test_a_main_loop_handler_cannot_take_the_listener_thread_as_its_loop(listener, sender):
    receiver = listener()
    receiver.io_loop = None
    outcome = Recorder()

    def register_from_listener(args):
        try:
            receiver.register_handler('later', outcome, run_on_main_loop=True)
            outcome('registered')
        except RuntimeError as error:
            outcome(str(error))

    receiver.register_handler('first', register_from_listener)
    sender(receiver).send('first', None)

    assert 'set EventManager.io_loop first' in outcome.wait()
    assert receiver.io_loop is None


SERVER_STYLE_SCRIPT = textwrap.dedent('''
    # What a Toto server process does: set events up in the main thread, then run
    # the IOLoop there.  Toto 1.0.12 on Tornado 5+ never ran such handlers.
    import sys, threading
    from tornado.ioloop import IOLoop
    from toto.events import EventManager

    events = EventManager.instance()
    events.address = sys.argv[1]
    events.start_listening()
    events.register_server(sys.argv[1])

    def on_event(args):
        sys.stdout.write('%s ran on %s\\n' % (args, threading.current_thread().name))
        IOLoop.current().stop()

    events.register_handler('ping', on_event, run_on_main_loop=True)
    events.send('ping', 'handler')
    loop = IOLoop.current()
    loop.call_later(10, loop.stop)
    loop.start()
    events.close()
''')


def test_main_loop_handler_fires_in_a_server_style_process(tmp_path):
    script = tmp_path / 'server_style.py'
    script.write_text(six.text_type(SERVER_STYLE_SCRIPT))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    process = subprocess.Popen([sys.executable, str(script), loopback_address()],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = communicate(process, 20)
    assert process.returncode == 0, output
    assert 'handler ran on MainThread' in output


def test_broadcast_reaches_every_server(listener, sender):
    receivers = [listener(), listener()]
    recorders = [Recorder(), Recorder()]
    for receiver, recorder in zip(receivers, recorders):
        receiver.register_handler('news', recorder)

    assert sender(*receivers).send('news', 'for all') == 2

    assert [recorder.wait() for recorder in recorders] == ['for all', 'for all']


def test_non_broadcast_events_take_turns(listener, sender):
    receivers = [listener(), listener()]
    recorders = [Recorder(), Recorder()]
    for receiver, recorder in zip(receivers, recorders):
        receiver.register_handler('job', recorder, persist=True)
    source = sender(*receivers)

    for index in range(4):
        assert source.send('job', index, broadcast=False) == 1

    deadline = time.time() + DEFAULT_WAIT
    while recorders[0].count + recorders[1].count < 4 and time.time() < deadline:
        time.sleep(0.01)
    assert sorted([sorted(recorders[0].calls), sorted(recorders[1].calls)]) == [[0, 2], [1, 3]]


def test_send_without_servers_does_nothing(managers):
    assert managers().send('anything', {'a': 1}) == 0
    assert managers().send('anything', {'a': 1}, broadcast=False) == 0


def test_servers_are_registered_once_and_can_be_removed(listener, sender):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)
    source = sender(receiver)

    with pytest.raises(Exception, match='already registered'):
        source.register_server(receiver.address)
    assert source.send_to_server(receiver.address, 'e', 1) is True
    assert recorder.wait() == 1

    source.remove_server(receiver.address)
    assert not source.has_server(receiver.address)
    assert source.send('e', 2) == 0
    with pytest.raises(KeyError):
        source.send_to_server(receiver.address, 'e', 3)
    with pytest.raises(KeyError):
        source.remove_server(receiver.address)

    source.register_server(receiver.address)
    source.remove_all_servers()
    assert source.send('e', 4) == 0


def test_one_shot_handlers_run_once_and_persistent_ones_every_time(listener, sender):
    receiver = listener()
    once, always = Recorder(), Recorder()
    signature = receiver.register_handler('tick', once)
    assert signature == ('tick', (once, False, None, False))
    receiver.register_handler('tick', always, persist=True)
    source = sender(receiver)

    source.send('tick', 1)
    always.wait(1)
    source.send('tick', 2)
    always.wait(2)

    assert once.calls == [1]
    assert always.calls == [1, 2]


def test_handlers_of_finished_requests_are_skipped(listener, sender):
    loop_thread = LoopThread(name='main-loop')
    try:
        receiver = listener(io_loop=loop_thread.io_loop)
        skipped, skipped_on_loop, live = Recorder(), Recorder(), Recorder()
        receiver.register_handler('update', skipped, request_handler=FakeRequest(True))
        receiver.register_handler('update', skipped_on_loop, run_on_main_loop=True,
                                  request_handler=FakeRequest(True))
        receiver.register_handler('update', live, run_on_main_loop=True,
                                  request_handler=FakeRequest(False))

        sender(receiver).send('update', 'news')

        assert live.wait() == 'news'
        loop_thread.run(lambda: None)   # anything queued on the loop has run
        assert skipped.count == 0 and skipped_on_loop.count == 0
    finally:
        loop_thread.stop()


def test_removed_handlers_do_not_run(listener, sender):
    receiver = listener()
    removed, kept = Recorder(), Recorder()
    signature = receiver.register_handler('e', removed, persist=True)
    receiver.register_handler('e', kept)
    receiver.remove_handler(signature)
    receiver.remove_handler(signature)                  # again: ignored
    receiver.remove_handler(('never-registered', signature[1]))

    sender(receiver).send('e', 1)

    assert kept.wait() == 1
    assert removed.count == 0


def test_a_failing_handler_is_logged_and_the_listener_goes_on(listener, sender, caplog):
    receiver = listener()
    recorder = Recorder()

    def failing(args):
        raise RuntimeError('handler bug')

    receiver.register_handler('e', failing, persist=True)
    receiver.register_handler('after', recorder)
    source = sender(receiver)
    source.send('e', 1)
    source.send('e', 2)
    source.send('after', 3)            # handled once both 'e' events were

    assert recorder.wait() == 3
    errors = [record for record in caplog.records
              if record.name == 'toto.events' and record.levelno == logging.ERROR]
    assert len(errors) == 2
    assert 'handler bug' in caplog.text
    assert receiver.listening


def test_send_from_many_threads_at_once_loses_and_mixes_nothing(listener, sender):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('count', recorder, persist=True)
    source = sender(receiver)
    threads_count, per_thread = 8, 250
    go = threading.Event()
    failures = []

    def send_all(index):
        go.wait(DEFAULT_WAIT)
        try:
            for sequence in range(per_thread):
                payload = {'thread': index, 'sequence': sequence, 'pad': 'x' * (sequence % 50)}
                if source.send('count', payload) != 1:
                    failures.append((index, sequence))
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=send_all, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(20)

    recorder.wait(threads_count * per_thread, timeout=20)
    assert failures == []
    assert len(recorder.calls) == threads_count * per_thread
    for index in range(threads_count):
        sequences = [call['sequence'] for call in recorder.calls if call['thread'] == index]
        assert sequences == list(range(per_thread)), 'each thread arrives whole and in order'
    assert all(call['pad'] == 'x' * (call['sequence'] % 50) for call in recorder.calls)


def test_a_full_server_costs_one_send_timeout_then_events_to_it_are_dropped(managers, caplog):
    nobody = loopback_address()            # nothing listens: the queue only fills
    source = managers(send_timeout=0.2)
    source.register_server(nobody)

    started = time.time()
    results = [source.send('e', index) for index in range(1500)]
    elapsed = time.time() - started

    assert results[0] == 1
    assert results[-1] == 0
    assert elapsed < 3.0, 'only one send waited for the full queue'
    assert len(warnings_from_events(caplog)) == 1
    assert 'queue is full' in warnings_from_events(caplog)[0]


def test_instance_is_one_manager_until_closed():
    first = EventManager.instance()
    try:
        assert EventManager.instance() is first
    finally:
        first.close()
    second = EventManager.instance()
    try:
        assert second is not first
    finally:
        second.close()


# -- listening ---------------------------------------------------------------------------

def test_stop_listening_ends_the_thread_and_frees_the_address(managers, sender):
    address = loopback_address()
    first = managers(address)
    first.start_listening()
    assert first.listening
    assert first.stop_listening(timeout=2.0)
    assert not first.listening

    # Free at once: libzmq closes sockets in the background, and a bind
    # right after a stop found the address still taken (1 run in 15).
    for _ in range(5):
        again = managers(address)
        again.start_listening()
        assert again.stop_listening(timeout=2.0)

    second = managers(address)
    second.start_listening()                       # the address is free again
    recorder = Recorder()
    second.register_handler('e', recorder)
    sender(address).send('e', 'after restart')
    assert recorder.wait() == 'after restart'


def test_a_bind_error_is_raised_to_the_caller(listener, managers):
    taken = listener()
    second = managers(taken.address)
    with pytest.raises(zmq.ZMQError):
        second.start_listening()
    assert not second.listening


def test_listening_beyond_loopback_without_curve_warns(managers, caplog):
    exposed = managers('tcp://*:%d' % free_port())
    exposed.start_listening()
    exposed.stop_listening()
    assert 'has no authentication' in caplog.text
    assert 'event_bind_host=127.0.0.1' in caplog.text


def test_listening_needs_an_address(managers):
    with pytest.raises(ValueError, match='address'):
        managers().start_listening()


def test_garbage_frames_are_dropped_with_one_warning_and_the_listener_lives(
        listener, raw_push, caplog, monkeypatch):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('ok', recorder, persist=True)
    push = raw_push(receiver.address)
    garbage = [
        b'not zlib at all',
        zlib.compress(b'not a pickle'),
        zlib.compress(pickle.dumps(['a list, not an event'], 0)),
        zlib.compress(pickle.dumps({'name': 'no args'}, 0)),
        zlib.compress(pickle.dumps({'name': ['unhashable'], 'args': 1}, 0)),
    ]
    for data in garbage:
        push.send(data)
    push.send_multipart([b'two', b'frames'])
    push.send(frame({'name': 'ok', 'args': 1}))

    assert recorder.wait() == 1
    warnings = warnings_from_events(caplog)
    assert len(warnings) == 1, 'one warning for a burst of drops'
    assert 'event dropped' in warnings[0]

    import toto._eventlistener
    monkeypatch.setattr(toto._eventlistener, '_DROP_LOG_INTERVAL', 0.0)
    push.send(b'more garbage')
    push.send(frame({'name': 'ok', 'args': 2}))
    recorder.wait(2)
    assert '(and 5 more since the last warning)' in warnings_from_events(caplog)[-1]
    assert receiver.listening


def test_events_over_the_size_limit_are_dropped(listener, raw_push, sender, caplog):
    limit = 64 * 1024
    receiver = listener(max_size=limit)
    recorder = Recorder()
    receiver.register_handler('ok', recorder, persist=True)
    receiver.register_handler('big', recorder, persist=True)

    bomb = frame({'name': 'big', 'args': 'a' * (limit * 16)})    # inflates 16 times over
    assert len(bomb) < limit
    push = raw_push(receiver.address)
    push.send(bomb)
    push.send(frame({'name': 'ok', 'args': 'after the bomb'}))
    assert recorder.wait() == 'after the bomb'
    assert 'inflates to more than event_max_size=%d bytes' % limit in caplog.text

    # A frame over the limit is refused by ZeroMQ with its connection.
    raw_push(receiver.address).send(os.urandom(limit + 1))
    sender(receiver).send('ok', 'after the big frame')
    recorder.wait(2)
    settle()
    assert recorder.calls == ['after the bomb', 'after the big frame']
    assert receiver.listening


def test_send_refuses_events_over_the_size_limit(sender):
    source = sender(loopback_address(), max_size=1024)
    with pytest.raises(ValueError, match='over event_max_size'):
        source.send('big', binascii.hexlify(os.urandom(4096)))


def test_send_refuses_arguments_it_cannot_serialize(sender):
    source = sender(loopback_address())
    with pytest.raises(TypeError, match='cannot serialize'):
        source.send('e', threading.Lock())
    json_source = sender(loopback_address(), serialization='json')
    with pytest.raises(TypeError, match='cannot serialize'):
        json_source.send('e', {'when': datetime.datetime(2020, 1, 1)})


# -- what a received pickle may hold --------------------------------------------------

PLAIN_DATA = {
    'text': u'h\xe9llo \u2603',
    'bytes': b'\x00\xff',
    'empty bytes': b'',
    'number': 10 ** 20,
    'float': 2.5,
    'nothing': None,
    'list': [1, True, (2, 3)],
    'set': set([1, 2]),
    'frozenset': frozenset(['a']),
    'complex': 3 + 4j,
    'bytearray': bytearray(b'ab'),
    'datetime': datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    'date': datetime.date(1999, 12, 31),
    'time': datetime.time(23, 59),
    'timedelta': datetime.timedelta(days=2, seconds=3),
    'decimal': decimal.Decimal('1.25'),
    'uuid': uuid.UUID(int=42),
    'ordered': collections.OrderedDict([('b', 1), ('a', 2)]),
    'deque': collections.deque([1, 2]),
}


@pytest.mark.parametrize('protocol', [0, 2])
def test_plain_data_arrives_as_sent(listener, raw_push, protocol):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('data', recorder)
    raw_push(receiver.address).send(frame({'name': 'data', 'args': PLAIN_DATA}, protocol))
    assert recorder.wait() == PLAIN_DATA


class _Exploit(object):
    """Unpickles as os.getpid(): any callable a sender names would run."""

    def __reduce__(self):
        return (os.getpid, ())


def test_pickles_naming_other_globals_are_refused(listener, raw_push, caplog):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)
    push = raw_push(receiver.address)
    push.send(frame({'name': 'e', 'args': _Exploit()}))
    push.send(zlib.compress(b"c__builtin__\nbytearray\n(I1000000000000\ntR."))
    push.send(frame({'name': 'e', 'args': Point(1, 2)}))
    push.send(frame({'name': 'e', 'args': 'fine'}))

    assert recorder.wait() == 'fine'
    assert recorder.calls == ['fine']
    assert 'getpid, which is not allowed' in caplog.text


def test_event_pickle_globals_allows_named_classes(listener, raw_push):
    allowed = '%s.Point' % Point.__module__
    receiver = listener(pickle_globals=[allowed])
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)
    push = raw_push(receiver.address)
    push.send(frame({'name': 'e', 'args': _Exploit()}))
    push.send(frame({'name': 'e', 'args': Point(1, 2)}))
    assert recorder.wait() == Point(1, 2)
    settle()
    assert recorder.calls == [Point(1, 2)]


def test_event_pickle_globals_star_allows_anything_as_1_0_12(listener, raw_push):
    receiver = listener(pickle_globals=['*'])
    recorder = Recorder()
    receiver.register_handler('e', recorder)
    raw_push(receiver.address).send(frame({'name': 'e', 'args': _Exploit()}))
    assert recorder.wait() == os.getpid()


# -- JSON and CURVE ----------------------------------------------------------------------

def test_json_mode_sends_json_and_refuses_pickles(listener, sender, caplog):
    receiver = listener(serialization='json')
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)
    sender(receiver).send('e', 'pickled')
    sender(receiver, serialization='json').send('e', {'pair': (1, 2), 'text': u'\u2603'})

    assert recorder.wait() == {'pair': [1, 2], 'text': u'\u2603'}
    settle()
    wait_until(lambda: 'event_serialization is json' in caplog.text)
    assert len(recorder.calls) == 1


def test_pickle_mode_listeners_also_read_json(listener, sender):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('e', recorder)
    sender(receiver, serialization='json').send('e', [1, u'two'])
    assert recorder.wait() == [1, u'two']


def z85_keypair():
    public, secret = zmq.curve_keypair()
    return public.decode('ascii'), secret.decode('ascii')


@needs_curve
def test_curve_lets_only_holders_of_the_shared_key_pair_send(listener, sender, caplog):
    public, secret = z85_keypair()
    receiver = listener(curve_secret_key=secret)
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)
    _, stranger_secret = z85_keypair()

    sender(receiver).send('e', 'plaintext')
    sender(receiver, curve_secret_key=stranger_secret,
           curve_server_key=public).send('e', 'stranger')
    sender(receiver, curve_secret_key=secret).send('e', 'member')

    assert recorder.wait() == 'member'
    settle()
    wait_until(lambda: 'unknown CURVE key' in caplog.text)
    assert recorder.calls == ['member']


@needs_curve
def test_curve_authorized_keys_names_the_senders(listener, sender, tmp_path):
    import zmq.auth
    server_public, server_secret = z85_keypair()
    allowed_dir = tmp_path / 'allowed'
    allowed_dir.mkdir()
    _, client_secret_file = zmq.auth.create_certificates(str(allowed_dir), 'client')
    client_secret_copy = tmp_path / 'client.key_secret'
    os.rename(client_secret_file, str(client_secret_copy))
    receiver = listener(curve_secret_key=server_secret, curve_authorized_keys=str(allowed_dir))
    recorder = Recorder()
    receiver.register_handler('e', recorder, persist=True)

    sender(receiver, curve_secret_key=server_secret).send('e', 'server key, not listed')
    sender(receiver, curve_secret_key=str(client_secret_copy),
           curve_server_key=server_public).send('e', 'listed client')

    assert recorder.wait() == 'listed client'
    settle()
    assert recorder.calls == ['listed client']


def test_authorized_keys_without_a_secret_key_is_refused(managers, tmp_path):
    manager = managers(loopback_address(), curve_authorized_keys=str(tmp_path))
    with pytest.raises(ValueError, match='needs event_curve_secret_key'):
        manager.start_listening()


# -- options and process set-up -------------------------------------------------------------

def test_options_keep_the_1_0_12_names_and_defaults():
    defaults = dict((name, options._options[name.replace('_', '-')].default)
                    for name in ('event_port', 'event_mode', 'event_init_module'))
    assert defaults == {'event_port': 8999, 'event_mode': 'off', 'event_init_module': None}
    assert options._options['remote-event-receivers'].multiple
    assert options._options['event-bind-host'].default == '127.0.0.1'


def test_options_are_read_when_needed(event_options, managers):
    manager = managers()                    # made before the options are set
    event_options.event_max_size = 100
    manager.register_server(loopback_address())
    with pytest.raises(ValueError, match='event_max_size=100'):
        manager.send('e', binascii.hexlify(os.urandom(200)))


def test_event_address_brackets_ipv6_and_checks_the_port():
    assert event_address('127.0.0.1', 8999) == 'tcp://127.0.0.1:8999'
    assert event_address('*', 9000) == 'tcp://*:9000'
    assert event_address('::1', 9000) == 'tcp://[::1]:9000'
    with pytest.raises(ValueError):
        event_address('127.0.0.1', 70000)


def test_configure_for_process_wires_a_service_as_1_0_12(managers, listener):
    port = two_free_ports()
    remote = listener()
    invoked = []
    init = types.ModuleType('event_init_for_test')
    init.invoke = invoked.append
    processes = [managers(), managers()]
    for service_id, manager in enumerate(processes):
        configure_for_process(manager, service_id=service_id, process_count=2, event_port=port,
                              bind_host='127.0.0.1', remote_receivers=[remote.address],
                              init_module=init)
    assert [manager.address for manager in processes] == [
        'tcp://127.0.0.1:%d' % port, 'tcp://127.0.0.1:%d' % (port + 1)]
    assert invoked == processes
    recorders = [Recorder() for _ in range(3)]
    for manager, recorder in zip(processes + [remote], recorders):
        manager.register_handler('hello', recorder)

    assert processes[1].send('hello', 'everyone') == 3

    assert [recorder.wait() for recorder in recorders] == ['everyone'] * 3


def test_configure_for_process_reads_the_options(event_options, managers, listener, tmp_path,
                                                 monkeypatch):
    port = free_port()
    remote = listener()
    package = 'events_init_%s' % uuid.uuid4().hex
    (tmp_path / package).mkdir()
    (tmp_path / package / '__init__.py').write_text(six.text_type(
        'calls = []\n\ndef invoke(manager):\n    calls.append(manager)\n'))
    (tmp_path / package / 'setup.py').write_text(six.text_type('# no invoke here\n'))
    monkeypatch.syspath_prepend(str(tmp_path))
    event_options.event_port = port
    event_options.event_bind_host = '127.0.0.1'
    event_options.remote_event_receivers = [remote.address, remote.address]
    event_options.event_init_module = package + '.setup'     # 1.0.12 called the package's

    manager = configure_for_process(managers(), service_id=0, process_count=1)

    assert manager.address == 'tcp://127.0.0.1:%d' % port
    assert sys.modules[package].calls == [manager]
    assert manager.has_server(remote.address)
    recorder = Recorder()
    manager.register_handler('self', recorder)
    assert manager.send('self', 'loop back') == 2
    assert recorder.wait() == 'loop back'


def test_configure_for_a_worker_only_sends(managers, listener):
    remote = listener()
    manager = configure_for_process(managers(), process_count=0, remote_receivers=[remote.address],
                                    init_module='', listen=False)
    assert not manager.listening
    recorder = Recorder()
    remote.register_handler('from worker', recorder)
    manager.send('from worker', 1)
    assert recorder.wait() == 1


# -- Toto 1.0.12 on the other end ------------------------------------------------------------

ORACLE_LISTENER = textwrap.dedent('''
    import binascii, cPickle, sys
    from toto.events import EventManager

    events = EventManager(sys.argv[1])

    def on_event(args):
        sys.stdout.write('event %s\\n' % binascii.hexlify(cPickle.dumps(args, 2)))
        sys.stdout.flush()

    events.register_handler('greeting', on_event, persist=True)
    events.start_listening()
    sys.stdout.write('ready\\n')
    sys.stdout.flush()
    sys.stdin.read()
''')

ORACLE_SENDER = textwrap.dedent('''
    # -*- coding: utf-8 -*-
    import datetime, decimal, sys
    from toto.events import EventManager

    events = EventManager()
    events.register_server(sys.argv[1])
    args = {'text': u'h\\xe9llo', 'utf8': 'h\\xc3\\xa9llo', 'raw': '\\xff\\x00', 'plain': 'abc',
            'big': 10 ** 20, 'when': datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
            'tags': set([1, 2]), 'pair': (1, 2), 'price': decimal.Decimal('9.99'),
            'nested': {'list': [1, None, True, 2.5]}}
    events.send('greeting', args)
    events.send('greeting', 'round-robin', broadcast=False)
    sys.stdout.write('sent\\n')
    sys.stdout.flush()
    sys.stdin.read()
''')

FROM_ORACLE = {
    'text': u'h\xe9llo',
    # A Python 2 str arrives on Python 3 as text if it is UTF-8, else as bytes.
    'utf8': u'h\xe9llo' if six.PY3 else b'h\xc3\xa9llo',
    'raw': b'\xff\x00',
    'plain': 'abc',
    'big': 10 ** 20,
    'when': datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    'tags': set([1, 2]),
    'pair': (1, 2),
    'price': decimal.Decimal('9.99'),
    'nested': {'list': [1, None, True, 2.5]},
}

TO_ORACLE = {
    'text': u'h\xe9llo \u2603',
    'raw': b'\x00\xff',
    'number': 3,
    'big': 10 ** 20,
    'items': [1, 2.5, None, True],
    'pair': (1, 2),
    'tags': set(['a']),
    'when': datetime.datetime(2021, 6, 7, 8, 9, 10),
}


@pytest.fixture
def oracle(tmp_path):
    """Runs a script under the original Toto 1.0.12 (TOTO_ORACLE_PYTHON)."""
    python = os.environ.get('TOTO_ORACLE_PYTHON')
    if not python or not os.path.isfile(python):
        message = ('TOTO_ORACLE_PYTHON is %s: it must name a Python 2.7 with toto==1.0.12'
                   % ('%r, not a file' % python if python else 'not set'))
        if os.environ.get('CI'):
            pytest.fail(message + ' (CI is set, so these tests may not be skipped)')
        pytest.skip(message)
    started = []

    def run(source, *args):
        script = tmp_path / ('oracle_%d.py' % len(started))
        script.write_text(six.text_type(source))
        process = OracleProcess(python, str(script), args, str(tmp_path))
        started.append(process)
        return process

    yield run
    for process in started:
        process.end()


class OracleProcess(object):
    """A child running under the oracle interpreter; its stdout is read line by line."""

    def __init__(self, python, script, args, cwd):
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)         # the original toto, not this checkout
        self.process = subprocess.Popen([python, script] + list(args), cwd=cwd, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        self.output = []
        reader = threading.Thread(target=self._read)
        reader.daemon = True
        reader.start()

    def _read(self):
        for line in iter(self.process.stdout.readline, b''):
            line = line.decode('utf-8', 'replace').rstrip('\n')
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, prefix, timeout=10.0):
        """The next line that starts with ``prefix`` (other lines are kept in output)."""
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError('no %r line from the oracle; its output:\n%s'
                                     % (prefix, '\n'.join(self.output)))
            if line.startswith(prefix):
                return line[len(prefix):]

    def end(self):
        try:
            self.process.stdin.close()
        except (IOError, OSError):
            pass
        deadline = time.time() + 10
        while self.process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_original_toto_receives_what_this_package_sends(oracle, sender):
    address = loopback_address()
    original = oracle(ORACLE_LISTENER, address)
    original.expect('ready')
    source = sender(address)

    assert source.send('greeting', TO_ORACLE) == 1
    source.send('greeting', u'second', broadcast=False)

    received = [unpickle_from_python2(original.expect('event ')) for _ in range(2)]
    assert received == [TO_ORACLE, u'second']


def test_this_package_receives_what_original_toto_sends(oracle, listener):
    receiver = listener()
    recorder = Recorder()
    receiver.register_handler('greeting', recorder, persist=True)
    original = oracle(ORACLE_SENDER, receiver.address)
    original.expect('sent')

    recorder.wait(2, timeout=10)
    assert recorder.calls == [FROM_ORACLE, 'round-robin']
    assert type(recorder.calls[0]['plain']) is str


def unpickle_from_python2(hexed):
    data = binascii.unhexlify(hexed.strip())
    if six.PY3:
        # Python 2 str -> bytes, unicode -> str: exactly the types that were sent.
        return pickle.loads(data, encoding='bytes')
    return pickle.loads(data)


def communicate(process, timeout):
    """The output of ``process``, killed if it runs longer than ``timeout`` seconds."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        return process.communicate()[0].decode('utf-8', 'replace')
    finally:
        timer.cancel()
