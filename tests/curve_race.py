"""Race CURVE handshakes against the calls that close libsodium's random source.

    python curve_race.py SECONDS

Two threads make CURVE connections (REQ/REP on loopback, one call each) while
two others end ZeroMQ contexts and make key pairs, the two things that make an
old pyzmq wheel's libzmq call ``randombytes_close()``.  It imports
``toto.zmqworkerconnection`` first, as a Toto process does.  Prints
``handshakes N`` and exits 0 when it lived; on a pyzmq before 22.2.1 without
the fix of ``toto._sodium`` the process is killed by SIGABRT within a second.
"""

from __future__ import print_function

import sys
import threading
import time

import zmq

import toto.zmqworkerconnection  # noqa: F401 -- what a Toto client process imports


def end_contexts_and_make_keys(stop):
    while not stop.is_set():
        zmq.curve_keypair()
        zmq.Context().term()


def make_curve_connections(stop, counts):
    server_public, server_secret = zmq.curve_keypair()
    context = zmq.Context()
    try:
        while not stop.is_set():
            server = context.socket(zmq.REP)
            server.curve_server = True
            server.curve_secretkey = server_secret
            port = server.bind_to_random_port('tcp://127.0.0.1')
            client = context.socket(zmq.REQ)
            client.curve_serverkey = server_public
            client.curve_publickey, client.curve_secretkey = zmq.curve_keypair()
            client.connect('tcp://127.0.0.1:%d' % port)
            client.send(b'call')
            server.recv()
            server.send(b'answer')
            client.recv()
            client.close(0)
            server.close(0)
            counts.append(1)
    finally:
        context.term()


def main(seconds):
    stop = threading.Event()
    counts = []
    threads = [threading.Thread(target=end_contexts_and_make_keys, args=(stop,))
               for _ in range(2)]
    threads += [threading.Thread(target=make_curve_connections, args=(stop, counts))
                for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    print('handshakes %d' % len(counts))


if __name__ == '__main__':
    main(float(sys.argv[1]))
