"""Call the example's ``greet`` method three ways from a script (Python 3).

    python examples/client.py Ada
    python examples/client.py --worker_address=tcp://10.0.0.5:55555 Ada

The worker_* options come from webapp.conf beside this file, as for the web
application, then from the command line. The script makes the same call with
a callback, from a ``gen.coroutine`` that yields, and from a native coroutine
that awaits, and prints each answer. (webapp_py2.py shows the Python 2.7
spelling, ``yield conn.invoke(..., await=True)``.)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Generator

import tornado.options
from tornado import gen
from tornado.concurrent import Future

from toto.workerconnection import WorkerConnection

HERE = os.path.dirname(os.path.abspath(__file__))


def with_callback(name: str) -> Future[Any]:
    """1. A callback: called once, with the answer, on this IOLoop."""
    answered: Future[Any] = Future()
    connection = WorkerConnection.instance()
    connection.invoke('greet', {'name': name}, callback=answered.set_result)
    return answered


@gen.coroutine
def with_yield(name: str) -> Generator[Any, Any, Any]:
    """2. yield: a gen.coroutine yields the Future the await flag gives.

    ``await=True`` on Python 2.7; on Python 3 the same keyword goes
    through a dictionary, a spelling that also runs on Python 2.7.
    """
    connection = WorkerConnection.instance()
    answer = yield connection.invoke('greet', {'name': name},
                                     **{'await': True})
    return answer


async def with_await(name: str) -> Any:
    """3. await: a native coroutine awaits ``invoke(..., await_=True)``."""
    connection = WorkerConnection.instance()
    return await connection.invoke('greet', {'name': name},
                                   await_=True)


async def call_three_ways(name: str) -> None:
    print('callback:', await with_callback(name))
    print('yield:   ', await with_yield(name))
    print('await:   ', await with_await(name))
    WorkerConnection.instance().close()


def main() -> None:
    tornado.options.parse_config_file(os.path.join(HERE, 'webapp.conf'),
                                      final=False)
    names = tornado.options.parse_command_line()
    asyncio.run(call_three_ways(names[0] if names else 'world'))


if __name__ == '__main__':
    main()
