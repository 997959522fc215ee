"""Call a Toto worker with ZMQWorkerConnection and print what came back, types included.

    python workerclient.py tcp://127.0.0.1:PORT values

Sends :data:`SAMPLE` as the parameters and prints one JSON line describing the answer:
every value that is not a dict or a list becomes ``[type name, value]``, with bytes
written as ``'hex:...'``.  Runs on Python 2.7 and 3, so the tests can look at what a
Python 2 client receives from a Python 3 worker.
"""

from __future__ import print_function

import binascii
import json
import sys

import six

from toto.zmqworkerconnection import ZMQWorkerConnection

#: Text, bytes that are not UTF-8, and UTF-8 bytes (a Python 2 ``str`` that decodes).
SAMPLE = {
    u'text': u'h\xe9llo \u2603',
    u'bytes': b'\xff\x00',
    u'utf8': u'h\xe9llo'.encode('utf-8'),
}


def _text(key):
    return key if isinstance(key, six.text_type) else key.decode('utf-8')


def describe(value):
    """A JSON-able picture of ``value`` that keeps the type of every leaf."""
    if isinstance(value, dict):
        return {_text(key): describe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(item) for item in value]
    if isinstance(value, bytes):
        return [type(value).__name__, 'hex:' + binascii.hexlify(value).decode('ascii')]
    return [type(value).__name__, value]


def main(address, method):
    connection = ZMQWorkerConnection(address, timeout=5.0)
    try:
        result = connection.invoke(method, SAMPLE, **{'await': True}).result(30)
    finally:
        connection.close()
    print(json.dumps(describe(result), sort_keys=True))
    sys.stdout.flush()


if __name__ == '__main__':
    main(*sys.argv[1:])
