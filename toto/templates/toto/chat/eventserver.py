#!/usr/bin/env python
"""Runs a server that only receives events (event.conf): it logs every chat message.

For the chat servers to send it their messages, list its event address in their
remote_event_receivers (see toto.conf).
"""

import os

from toto.server import TotoServer

if __name__ == '__main__':
    TotoServer(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'event.conf')).run()
