"""A bare ZeroMQ ROUTER that speaks the Toto wire format, with deliberate faults.

    python rawworker.py MODE      (prints ``READY tcp://127.0.0.1:PORT`` once bound)

The client's ``DEALER`` talks to it directly (the layout SPEC 5 allows): it receives
``[identity, b'', message_id, payload]`` and answers ``[identity, b'', message_id,
response]``.  ``payload`` is a protocol 2 pickle of ``{'method', 'parameters'}``.

``half``     answers only calls whose ``parameters['n']`` is even (with the parameters);
             odd ones are never answered
``garbage``  answers odd ``n`` with bytes no serializer decodes, even ``n`` normally

It runs until it is killed.
"""

from __future__ import print_function

import pickle
import sys

import zmq

GARBAGE = b'\xff\x00 not a pickle, not json, not zlib \xfe'


def main(mode):
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.SNDHWM, 0)
    router.setsockopt(zmq.RCVHWM, 0)
    port = router.bind_to_random_port('tcp://127.0.0.1')
    print('READY tcp://127.0.0.1:%d' % port)
    sys.stdout.flush()
    while True:
        frames = router.recv_multipart()
        identity, message_id, payload = frames[0], frames[-2], frames[-1]
        parameters = pickle.loads(payload)['parameters']
        odd = parameters['n'] % 2 == 1
        if mode == 'half':
            if odd:
                continue
            answer = pickle.dumps(parameters, 2)
        elif mode == 'garbage':
            answer = GARBAGE if odd else pickle.dumps(parameters, 2)
        else:
            raise SystemExit('unknown mode %r' % (mode,))
        router.send_multipart([identity, b'', message_id, answer])


if __name__ == '__main__':
    main(sys.argv[1])
