#!/usr/bin/env python
"""Checks the server end to end: accounts, logins and the counter kept in each session."""

from __future__ import print_function

import sys
from uuid import uuid4

from create import create_account
from login import login
from request import load_session, toto_request


def check(answer):
    if 'error' in answer:
        print('error:', answer['error'])
        sys.exit(1)
    return answer


def check_count(answer, expected):
    count = check(answer)['result']['count']
    if count != expected:
        print('the counter is not counting: expected %s, got %s' % (expected, count))
        print(answer)
        sys.exit(1)
    return answer


def count_three_times():
    session = load_session()
    for expected in (1, 2, 3):
        print(check_count(toto_request('increment', session=session), expected))


def main():
    for _ in range(2):
        user_id, password = uuid4().hex, uuid4().hex
        print('new user: %s password: %s' % (user_id, password))
        print(check(create_account(user_id, password)))
        count_three_times()
        print('logging in again: a new session counts from 1')
        print(check(login(user_id, password)))
        count_three_times()
    print('Session storage ok')


if __name__ == '__main__':
    main()
