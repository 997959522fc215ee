"""A toto.events peer for the differential tests, using only the API of Toto 1.0.12.

    python event_peer.py listen ADDRESS
    python event_peer.py send ADDRESS[,ADDRESS...] JSON_EVENTS

The tests run it under the original Toto 1.0.12 and under this package, so events go
from each package to each.  ``listen`` binds an ``EventManager`` on ADDRESS with two
persistent handlers -- ``thread_event`` runs on the listener's thread, ``loop_event``
with ``run_on_main_loop=True`` on the main IOLoop -- prints ``READY ADDRESS`` and then
one ``EVENT {json}`` line per event handled.  ``send`` registers every ADDRESS as a
server and broadcasts each ``[name, args]`` of JSON_EVENTS, prints ``SENT``, and stays
up (sockets open, so nothing hinges on delivery at exit) until it is killed.  Both stop
by themselves after :data:`STOP_AFTER` seconds.
"""

from __future__ import print_function

import json
import sys
import threading

from tornado.ioloop import IOLoop

from toto.events import EventManager

STOP_AFTER = 120.0


def _native(value):
    """JSON text as a Python 2 app would have it: ``str`` where it is ASCII."""
    if sys.version_info[0] >= 3:
        return value
    if isinstance(value, unicode):  # noqa: F821 - Python 2 only
        try:
            return value.encode('ascii')
        except UnicodeError:
            return value
    if isinstance(value, dict):
        return dict((_native(k), _native(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_native(item) for item in value]
    return value


def _say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def _recorder(name, where):
    def handle(args):
        _say('EVENT ' + json.dumps({'name': name, 'args': args, 'on': where}, sort_keys=True))
    return handle


def listen(address):
    loop = IOLoop.instance()
    manager = EventManager(address)
    manager.register_handler('thread_event', _recorder('thread_event', 'listener thread'),
                             persist=True)
    manager.register_handler('loop_event', _recorder('loop_event', 'main loop'),
                             run_on_main_loop=True, persist=True)
    manager.start_listening()
    loop.add_callback(_say, 'READY ' + address)
    loop.call_later(STOP_AFTER, loop.stop)
    loop.start()


def send(addresses, events):
    manager = EventManager()
    for address in addresses.split(','):
        manager.register_server(address)
    for name, args in json.loads(events):
        manager.send(_native(name), _native(args))
    _say('SENT')
    threading.Event().wait(STOP_AFTER)


def main():
    mode = sys.argv[1]
    if mode == 'listen':
        listen(sys.argv[2])
    elif mode == 'send':
        send(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit('usage: event_peer.py listen ADDRESS | send ADDRESSES JSON_EVENTS')


if __name__ == '__main__':
    main()
