"""The example's web application: Tornado handlers that call worker methods.

    python examples/webapp_py3.py          (Python 3)
    python examples/webapp_py2.py          (Python 2.7)

    $ curl 'http://127.0.0.1:8000/hello?name=Ada'
    {"greeting": "Hello, Ada!"}
    $ curl 'http://127.0.0.1:8000/visits'
    {"visits": 1}

The two files are one program. They differ only where a handler waits for a
worker: a Python 2.7 ``gen.coroutine`` yields the Future that
``invoke(..., await=True)`` returns, while a Python 3 ``async def`` awaits
``invoke(..., await_=True)`` (``await`` is a reserved word from Python 3.7
on). Everything else, the type comments included, is the same text.

Options come from webapp.conf beside this file, then from the command line:
``--port``, ``--host`` and the ``worker_*`` options, which configure the
shared connection that ``WorkerConnection.instance()`` returns.
"""

from __future__ import absolute_import, division, print_function

import logging
import os

import tornado.ioloop
import tornado.options
import tornado.web
from tornado.options import define, options

from toto.exceptions import ERROR_MISSING_PARAMS
from toto.workerconnection import WorkerConnection

HERE = os.path.dirname(os.path.abspath(__file__))

define('host', default='127.0.0.1', type=str, group='example web application',
       help='Interface the web application listens on')
define('port', default=8000, type=int, group='example web application',
       help='Port the web application listens on')

logger = logging.getLogger('example.webapp')


class WorkerHandler(tornado.web.RequestHandler):
    """Base of the handlers: turns worker error answers into HTTP errors."""

    def failed(self, answer):  # type: (object) -> bool
        """Send an error answer as an HTTP error; tell whether it was one."""
        error = answer.get('error') if isinstance(answer, dict) else None
        if error is None:
            return False
        if error == 'timeout':
            self.set_status(504)  # no worker answered in time (zmq)
        elif isinstance(error, dict) and \
                error.get('code') == ERROR_MISSING_PARAMS:
            self.set_status(400)  # the method refused the parameters
        else:
            self.set_status(502)  # the method failed
        self.write({'error': error})
        return True


class HelloHandler(WorkerHandler):
    """GET /hello?name=NAME: greet through ``greet``, record the visit."""

    async def get(self):  # type: () -> None
        name = self.get_argument('name', '')
        connection = WorkerConnection.instance()
        answer = await connection.invoke('greet', {'name': name}, await_=True)
        if self.failed(answer):
            return
        # visits.record is @asynchronous: the worker acknowledges it at once
        # (the callback gets None) and writes the visit afterwards. Nothing
        # waits for it; the callback runs later on this IOLoop.
        connection.visits.record({'name': name}, callback=log_acknowledgement)
        self.write({'greeting': answer['greeting']})


class VisitsHandler(WorkerHandler):
    """GET /visits: the number of recorded visits, from ``visits.count``."""

    async def get(self):  # type: () -> None
        connection = WorkerConnection.instance()
        # The attribute style: connection.visits.count(...) is
        # connection.invoke('visits.count', ...).
        answer = await connection.visits.count({}, await_=True)
        if self.failed(answer):
            return
        self.write({'visits': answer['visits']})


def log_acknowledgement(answer):  # type: (object) -> None
    if answer is not None:  # an error answer, such as {'error': 'timeout'}
        logger.warning('visits.record was not acknowledged: %r', answer)


def make_app():  # type: () -> tornado.web.Application
    return tornado.web.Application([
        (r'/hello', HelloHandler),
        (r'/visits', VisitsHandler),
    ])


def serve():  # type: () -> None
    make_app().listen(options.port, options.host)
    logger.info('listening on http://%s:%d/, calling %s workers at %s',
                options.host, options.port, options.worker_transport,
                options.worker_address)


def main():  # type: () -> None
    tornado.options.parse_config_file(os.path.join(HERE, 'webapp.conf'),
                                      final=False)
    tornado.options.parse_command_line()
    # Start listening from inside the running loop: that works the same on
    # Tornado 5.1 and 6, and needs no "current" loop before the loop runs
    # (which recent Pythons deprecate).
    loop = tornado.ioloop.IOLoop(make_current=False)
    loop.add_callback(serve)
    loop.start()


if __name__ == '__main__':
    main()
