#!/usr/bin/env python
"""Logs in (asking for a user id and a password) and keeps the session."""

from __future__ import print_function

import sys

from request import save_session, toto_request


def login(user_id, password):
    answer = toto_request('account.login', {'user_id': user_id, 'password': password})
    save_session(answer)
    return answer


if __name__ == '__main__':
    print('Enter your username')
    user_id = sys.stdin.readline().strip()
    print('Enter your password')
    password = sys.stdin.readline().strip()
    print(login(user_id, password))
