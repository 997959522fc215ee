#!/usr/bin/env python
"""Runs this project's Toto server with the options in toto.conf.

Command line options override the conf file: python totoserver.py --port=8080 --processes=2
"""

import os

from toto.server import TotoServer

if __name__ == '__main__':
    TotoServer(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'toto.conf')).run()
