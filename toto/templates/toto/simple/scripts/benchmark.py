#!/usr/bin/env python
"""Times N increment calls on a new account: python benchmark.py [N] (default 1000)."""

from __future__ import print_function

import sys
import time
from uuid import uuid4

from create import create_account
from request import load_session, toto_request
from test_server import check, check_count


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    user_id, password = uuid4().hex, uuid4().hex
    print('user: %s password: %s' % (user_id, password))
    print(check(create_account(user_id, password)))
    session = load_session()
    start = time.time()
    for expected in range(1, count + 1):
        check_count(toto_request('increment', session=session), expected)
    elapsed = time.time() - start
    print('%d requests in %.2f s (%.0f per second)' % (count, elapsed, count / elapsed))


if __name__ == '__main__':
    main()
