#!/usr/bin/env python
"""Waits for the next chat message with four long polls to $TOTO_URL.

Two POST the method in the body, two GET it by its URL path; run send_chat.py to end them.
"""

from __future__ import print_function

import json
import os
import threading

try:
    from urllib.request import Request, urlopen
except ImportError:  # Python 2
    from urllib2 import Request, urlopen

SERVER_URL = os.environ.get('TOTO_URL', 'http://localhost:8888/')
_print_lock = threading.Lock()


def receive(method_in_url):
    if method_in_url:
        request = Request(SERVER_URL.rstrip('/') + '/receive_message')
    else:
        body = json.dumps({'method': 'receive_message', 'parameters': {}}).encode('utf-8')
        request = Request(SERVER_URL, body, {'content-type': 'application/json'})
    answer = urlopen(request, timeout=600).read().decode('utf-8')
    with _print_lock:
        print('received (%s): %s' % ('url' if method_in_url else 'body', answer))


if __name__ == '__main__':
    listeners = [threading.Thread(target=receive, args=(in_url,))
                 for in_url in (False, False, True, True)]
    for listener in listeners:
        listener.start()
    print('listening')
    for listener in listeners:
        listener.join()
