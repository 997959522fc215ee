"""Report what arrived (type name and value of each parameter) and send sample values.

Used across interpreters: a Python 2.7 worker called from Python 3 and the reverse.
"""

import sys

#: Text, bytes that are not UTF-8, and UTF-8 bytes (a Python 2 ``str`` that decodes).
SENT = {
    'text': u'h\xe9llo \u2603',
    'bytes': b'\xff\x00',
    'utf8': u'h\xe9llo'.encode('utf-8'),
}


def invoke(worker, parameters):
    return {
        'interpreter': sys.version_info[0],
        'received': {key: [type(value).__name__, value]
                     for key, value in parameters.items()},
        'sent': SENT,
    }
