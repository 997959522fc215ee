"""Clients that send garbage: the worker answers an error and keeps serving.

A raw pyzmq DEALER sends a TotoWorkerService malformed calls (wrong frame counts,
undecodable or truncated payloads, payloads that are not a dict, bad method names); an
HTTP worker gets bodies it cannot decode.  Afterwards the same worker process answers a
normal call.
"""

import json
import pickle
import zlib

import pytest
from faultkit import pickled_call, raw_request, zmq_call

GOOD = pickled_call('echo', {'a': 1})

#: (case, frames after the envelope delimiter) that the worker must answer with an error.
ZMQ_GARBAGE = [
    ('message id only', [b'g-1']),
    ('extra frames', [b'g-2', GOOD, b'extra', b'more']),
    ('undecodable payload', [b'g-3', b'\x80\x02 this is no pickle \xff']),
    ('truncated pickle', [b'g-4', GOOD[:-5]]),
    ('empty payload', [b'g-5', b'']),
    ('json text to a pickle worker', [b'g-6', b'{"method": "echo", "parameters": {}}']),
    ('zlib payload to a worker without compression', [b'g-7', zlib.compress(GOOD)]),
    ('a list, not a dict', [b'g-8', pickle.dumps(['echo', {}], 2)]),
    ('a string, not a dict', [b'g-9', pickle.dumps('echo', 2)]),
    ('no method key', [b'g-10', pickle.dumps({'parameters': {}}, 2)]),
    ('method is a number', [b'g-11', pickle.dumps({'method': 7, 'parameters': {}}, 2)]),
    ('private method name', [b'g-12', pickled_call('_files.write_atomically', {})]),
    ('method path climbing out', [b'g-13', pickled_call('pid.os.system', {'command': 'true'})]),
]

#: Messages without the envelope delimiter: the REP socket (libzmq) drops them unread.
ZMQ_UNFRAMED = [
    ('no envelope delimiter', [b'g-20', GOOD]),
]


@pytest.mark.timeout(30)
def test_zmq_worker_answers_garbage_with_errors_and_keeps_serving(lab, fault_report):
    service = lab.zmq_service(processes=1)
    pid = service.first_answer['pid']
    dealer = lab.raw_dealer(service.address)
    answers = {}

    for case, frames in ZMQ_GARBAGE:
        answers[case] = raw_request(dealer, [b''] + frames)
    for case, frames in ZMQ_UNFRAMED:
        answers[case] = raw_request(dealer, frames, timeout=0.5)
    normal = raw_request(dealer, [b'', b'g-30', GOOD])
    connection = lab.connect(service.address, timeout=2.0)
    following = zmq_call(connection, 'pid')

    errors = dict((case, pickle.loads(answer[2])['error'])
                  for case, answer in answers.items()
                  if answer is not None and len(answer) == 3)
    fault_report('zmq: a client sends garbage to the worker service',
                 {'sent': len(answers) + 2, 'errors': len(errors),
                  'answered': 2 * (normal is not None), 'timed_out': 0, 'lost': 0,
                  'duplicates': 0,
                  'unanswered': len([a for a in answers.values() if a is None])},
                 transport='zmq')
    for case, frames in ZMQ_GARBAGE:
        answer = answers[case]
        assert answer is not None, 'no answer to: %s' % case
        assert answer[:2] == [b'', frames[0]], (case, answer)
        assert errors[case]['code'] == 1000, (case, errors[case])
    for case, _ in ZMQ_UNFRAMED:
        assert answers[case] is None, (case, answers[case])
    assert normal[:2] == [b'', b'g-30'] and pickle.loads(normal[2]) == {'a': 1}
    assert following == {'pid': pid}, 'the same worker process still serves'
    assert service.is_running()


@pytest.mark.timeout(30)
def test_http_worker_refuses_garbage_bodies_with_400_and_keeps_serving(lab, fault_report):
    from tornado import gen
    from tornado.httpclient import AsyncHTTPClient

    from toto.httpworkerconnection import HTTPWorkerConnection
    service = lab.http_service()
    pid = service.first_answer['pid']
    pickle_type, json_type = 'application/pickle', 'application/json'
    bodies = [
        ('undecodable pickle', pickle_type, b'\x80\x02 this is no pickle \xff', 400),
        ('truncated pickle', pickle_type, GOOD[:-5], 400),
        ('empty body', pickle_type, b'', 400),
        ('a list, not a dict', pickle_type, pickle.dumps(['echo'], 2), 400),
        ('no method key', pickle_type, pickle.dumps({'parameters': {}}, 2), 400),
        ('zlib body to a worker without compression', pickle_type, zlib.compress(GOOD), 400),
        ('json that is not json', json_type, b'{"method": ', 400),
        ('json list', json_type, b'["echo", {}]', 400),
        ('json number', json_type, b'7', 400),
        ('method is a number', json_type, b'{"method": 7}', 404),
        ('unknown method', json_type, json.dumps({'method': 'nope'}).encode('ascii'), 404),
    ]

    @gen.coroutine
    def post_all():
        client = AsyncHTTPClient()
        statuses = {}
        for case, content_type, body, _ in bodies:
            response = yield client.fetch(service.address, method='POST', body=body,
                                          headers={'Content-Type': content_type},
                                          request_timeout=5.0, raise_error=False)
            statuses[case] = response.code
        raise gen.Return(statuses)
    statuses = lab.http(post_all)
    connection = HTTPWorkerConnection(service.address, timeout=2.0)
    following = lab.http(lambda: connection.invoke('pid', {}))

    fault_report('http: a client sends garbage bodies to the worker',
                 {'sent': len(bodies) + 1, 'errors': len(bodies),
                  'answered': int(following == {'pid': pid}), 'timed_out': 0, 'lost': 0,
                  'duplicates': 0}, transport='http')
    assert statuses == dict((case, status) for case, _, _, status in bodies)
    assert following == {'pid': pid}, 'the same worker process still serves'
    assert service.is_running()
