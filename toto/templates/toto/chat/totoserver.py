#!/usr/bin/env python
"""Runs the chat server with the options in toto.conf.

toto.conf starts it as a daemon: python totoserver.py --stop stops it, and
python totoserver.py --nodaemon keeps it in the foreground.
"""

import os

from toto.server import TotoServer

if __name__ == '__main__':
    TotoServer(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'toto.conf')).run()
