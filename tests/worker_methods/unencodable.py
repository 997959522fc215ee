"""Return something no serializer can encode (a lock)."""

import threading


def invoke(worker, parameters):
    return {'lock': threading.Lock()}
