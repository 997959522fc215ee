#!/usr/bin/env python
"""Posts a message to the chat server at $TOTO_URL (default http://localhost:8888/).

python send_chat.py [message]
"""

from __future__ import print_function

import json
import os
import sys

try:
    from urllib.request import Request, urlopen
except ImportError:  # Python 2
    from urllib2 import Request, urlopen

SERVER_URL = os.environ.get('TOTO_URL', 'http://localhost:8888/')


def post_message(message):
    body = json.dumps({'method': 'post_message', 'parameters': {'message': message}})
    request = Request(SERVER_URL, body.encode('utf-8'), {'content-type': 'application/json'})
    return urlopen(request, timeout=60).read().decode('utf-8')


if __name__ == '__main__':
    print(post_message(' '.join(sys.argv[1:]) or 'test message, welcome to Toto'))
