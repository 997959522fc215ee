#!/usr/bin/env python
"""Calls increment with the session that create.py or login.py kept."""

from __future__ import print_function

from request import load_session, toto_request

if __name__ == '__main__':
    print(toto_request('increment', session=load_session()))
