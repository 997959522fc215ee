"""The ZeroMQ wire format of the client, seen from a raw ROUTER socket (SPEC 5).

The test plays the worker by hand, so it sees exactly the frames the client sends and
chooses exactly the frames it answers with.
"""

import json
import pickle
import uuid
import zlib

import pytest
import zmq

from support import Recorder

WAIT_MS = 5000


class RawWorker(object):
    """A bare ROUTER on a loopback port; ``receive()`` returns one request's frames."""

    def __init__(self):
        self.context = zmq.Context()
        self.context.linger = 0
        self.socket = self.context.socket(zmq.ROUTER)
        self.address = 'tcp://127.0.0.1:%d' % self.socket.bind_to_random_port('tcp://127.0.0.1')

    def receive(self, timeout_ms=WAIT_MS):
        assert self.socket.poll(timeout_ms), 'no request within %d ms' % timeout_ms
        return self.socket.recv_multipart()

    def has_request(self, timeout_ms):
        return bool(self.socket.poll(timeout_ms))

    def answer(self, identity, message_id, *payload):
        self.socket.send_multipart([identity, b'', message_id] + list(payload))

    def close(self):
        self.socket.close()
        self.context.term()


@pytest.fixture
def raw_worker():
    worker = RawWorker()
    yield worker
    worker.close()


def test_request_is_an_empty_frame_a_uuid4_id_and_a_protocol_2_pickle(raw_worker,
                                                                      make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address)
    recorder = Recorder()
    conn.invoke('accounts.lookup', {'id': 7}, callback=recorder)
    identity, delimiter, message_id, payload = raw_worker.receive()
    assert delimiter == b''
    assert uuid.UUID(message_id.decode('ascii')).version == 4
    assert message_id.decode('ascii') == str(uuid.UUID(message_id.decode('ascii')))
    assert payload[:2] == b'\x80\x02', 'pickle protocol 2'
    assert pickle.loads(payload) == {'method': 'accounts.lookup', 'parameters': {'id': 7}}

    raw_worker.answer(identity, message_id, pickle.dumps({'found': True}, 2))
    assert recorder.wait() == {'found': True}


def test_json_request_is_utf8_bytes_and_json_answer_is_decoded(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address, serialization=json)
    recorder = Recorder()
    conn.invoke('echo', {'text': u'caf\xe9'}, callback=recorder)
    identity, _, message_id, payload = raw_worker.receive()
    assert json.loads(payload.decode('utf-8')) == {'method': 'echo',
                                                   'parameters': {'text': u'caf\xe9'}}
    raw_worker.answer(identity, message_id, json.dumps({'ok': u'\u2603'}).encode('utf-8'))
    assert recorder.wait() == {'ok': u'\u2603'}


def test_zlib_compresses_the_pickled_request_and_the_answer(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address, compression=zlib)
    recorder = Recorder()
    conn.invoke('echo', {'n': 1}, callback=recorder)
    identity, _, message_id, payload = raw_worker.receive()
    assert pickle.loads(zlib.decompress(payload)) == {'method': 'echo', 'parameters': {'n': 1}}
    raw_worker.answer(identity, message_id, zlib.compress(pickle.dumps([1, 2], 2)))
    assert recorder.wait() == [1, 2]


def test_auto_retry_resends_the_same_message_id_and_payload(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address, timeout=0.2, auto_retry=True)
    recorder = Recorder()
    conn.invoke('echo', {'retry': True}, callback=recorder)
    first = raw_worker.receive()
    second = raw_worker.receive()
    assert second[2:] == first[2:]
    identity, _, message_id, _ = second
    raw_worker.answer(identity, message_id, pickle.dumps('answered', 2))
    raw_worker.answer(identity, message_id, pickle.dumps('duplicate', 2))
    assert recorder.wait() == 'answered'
    # the duplicate is dropped: prove it arrived by answering a later call after it
    later = Recorder()
    conn.invoke('echo', {}, callback=later)
    while True:
        frames = raw_worker.receive()
        if frames[2] != message_id:   # skip resends still in flight
            break
    raw_worker.answer(frames[0], frames[2], pickle.dumps('later', 2))
    assert later.wait() == 'later'
    assert recorder.calls == ['answered']


def test_timed_out_call_is_not_resent_without_auto_retry(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address, timeout=0.2)
    recorder = Recorder()
    conn.invoke('echo', {}, callback=recorder)
    raw_worker.receive()
    assert recorder.wait() == {'error': 'timeout'}
    assert not raw_worker.has_request(300)


def test_acknowledgement_gives_none_and_a_later_result_is_dropped(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address)
    recorder = Recorder()
    conn.invoke('jobs.start', {}, callback=recorder)
    identity, _, message_id, _ = raw_worker.receive()
    raw_worker.answer(identity, message_id)                      # [b'', id] only
    raw_worker.answer(identity, message_id, pickle.dumps('late', 2))
    assert recorder.wait() is None
    later = Recorder()
    conn.invoke('echo', {}, callback=later)
    frames = raw_worker.receive()
    raw_worker.answer(frames[0], frames[2], pickle.dumps('next', 2))
    assert later.wait() == 'next'
    assert recorder.calls == [None]


def test_answer_for_an_unknown_id_is_dropped(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address)
    recorder = Recorder()
    conn.invoke('echo', {}, callback=recorder)
    identity, _, message_id, _ = raw_worker.receive()
    stranger = str(uuid.uuid4()).encode('ascii')
    raw_worker.answer(identity, stranger, pickle.dumps('not yours', 2))
    raw_worker.answer(identity, message_id, pickle.dumps('yours', 2))
    assert recorder.wait() == 'yours'
    assert recorder.calls == ['yours']
    assert len(conn) == 0


def test_every_call_gets_its_own_message_id(raw_worker, make_zmq_conn):
    conn = make_zmq_conn(raw_worker.address)
    recorder = Recorder()
    for index in range(50):
        conn.invoke('echo', {'i': index}, callback=recorder)
    requests = [raw_worker.receive() for _ in range(50)]
    assert len(set(frames[2] for frames in requests)) == 50
    for identity, _, message_id, payload in reversed(requests):   # answer out of order
        raw_worker.answer(identity, message_id,
                          pickle.dumps(pickle.loads(payload)['parameters'], 2))
    recorder.wait(count=50)
    assert sorted(result['i'] for result in recorder.calls) == list(range(50))
