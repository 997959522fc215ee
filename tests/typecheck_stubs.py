"""What the type stubs promise, checked by ``mypy --strict`` (``tox -e typecheck``).

This module is read by mypy only: pytest does not collect it and nothing runs it.
Each ``assert_type`` states the type a caller gets from the public API, and each
``# type: ignore[...]`` states a mistake the stubs must catch (``--strict`` reports
an ignore that is not needed, so a stub that stops catching it fails the check).
"""

import json
import pickle
import zlib
from typing import Any, Dict, Literal, Optional, Union

from tornado.concurrent import Future
from typing_extensions import assert_type

from toto.exceptions import ERROR_MISSING_PARAMS, ERROR_SERVER, TotoException
from toto.httpworker import TotoHTTPWorkerService, make_application
from toto.httpworkerconnection import HTTPWorkerConnection
from toto.invocation import (ERROR_INVALID_METHOD, ERROR_NOT_AUTHORIZED, asynchronous,
                             default_parameters, jsonp, requires)
from toto.options import safe_define
from toto.service import TotoService, pid_path, process_count
from toto.worker import TotoWorker, TotoWorkerService, error_info, pid_path as worker_pid_path
from toto.workerconnection import WorkerConnection, WorkerInvocation
from toto.zmqworkerconnection import ZMQWorkerConnection


def print_answer(answer: object) -> None:
    print(answer)


def zmq_calls(conn: ZMQWorkerConnection) -> None:
    assert_type(conn.invoke('a.b', {'x': 1}, await_=True), 'Future[Any]')
    assert_type(conn.invoke('a.b', {'x': 1}, callback=print_answer), 'Optional[Future[Any]]')
    assert_type(conn.invoke('a.b', {}, print_answer, 5.0, True), 'Optional[Future[Any]]')
    # The dictionary spelling runs on Python 2 and 3; its key is invisible to mypy.
    assert_type(conn.invoke('a.b', {}, **{'await': True}), Any)
    assert_type(conn.a.b, WorkerInvocation)
    assert_type(conn.a.b({}, callback=print_answer), Any)
    assert_type(conn.active_connections, 'set[str]')
    assert_type(len(conn), int)
    conn.invoke('a.b', {}, tiemout=1.0)  # type: ignore[call-overload]
    conn.invoke(42, {})  # type: ignore[call-overload]
    conn.invoke('a.b', {}, callback='not callable')  # type: ignore[call-overload]
    conn.add_connection('tcp://127.0.0.1:55556')
    conn.set_connections(['tcp://127.0.0.1:55555', 'tcp://127.0.0.1:55556'])
    conn.remove_connection('tcp://127.0.0.1:55556')
    conn.close()


def http_calls(conn: HTTPWorkerConnection) -> None:
    assert_type(conn.invoke('a.b', {}), 'Future[Any]')
    assert_type(conn.invoke('a.b', {}, await_=True), 'Future[Any]')
    assert_type(conn.invoke('a.b', {}, callback=print_answer), 'Future[Any]')
    assert_type(conn.invoke('a.b', {}, **{'await': True}), 'Future[Any]')
    assert_type(conn.invoke('a.b', {}, timeout=2.0, auto_retry_count=1), 'Future[Any]')
    conn.invoke('a.b', {}, tiemout=2.0)  # type: ignore[call-overload]
    conn.configure_client('curl', max_clients=20)
    conn.configure_tls(ca_file='ca.pem')


async def native(conn: ZMQWorkerConnection) -> Any:
    return await conn.invoke('a.b', {}, await_=True)


def construction() -> None:
    assert_type(ZMQWorkerConnection.instance(), ZMQWorkerConnection)
    assert_type(HTTPWorkerConnection.instance(), HTTPWorkerConnection)
    assert_type(WorkerConnection.instance(),
                Union[ZMQWorkerConnection, HTTPWorkerConnection])
    ZMQWorkerConnection('tcp://127.0.0.1:55555', timeout=5.0, compression=zlib,
                        serialization=json, auto_retry=True)
    ZMQWorkerConnection(['tcp://127.0.0.1:55555'], compression='zlib', serialization=pickle)
    HTTPWorkerConnection('http://127.0.0.1:8080/', serialization=json,
                         serialization_mime='application/json', auto_retry_count=2)
    ZMQWorkerConnection('tcp://127.0.0.1:55555', compression=json)  # type: ignore[arg-type]
    HTTPWorkerConnection('http://127.0.0.1:8080/', auto_retry=True)  # type: ignore[call-arg]


@asynchronous
def later(worker: TotoWorker, parameters: Dict[str, Any]) -> None:
    raise TotoException(ERROR_MISSING_PARAMS, 'x is required')


@requires('a', 'b')
@default_parameters({'b': 2})
@jsonp
def decorated(handler: Any, parameters: Dict[str, Any]) -> Any:
    return parameters


@jsonp('callback')
def decorated_named(handler: Any, parameters: Dict[str, Any]) -> Any:
    return parameters


def decorators() -> None:
    decorated(None, {'a': 1})
    decorated_named(None, {})
    assert_type(ERROR_NOT_AUTHORIZED, Literal[1004])
    requires(1)  # type: ignore[arg-type]


def worker_side() -> None:
    worker = TotoWorker('methods', 'ipc:///tmp/workers.sock', None, debug=True)
    assert_type(worker.status, str)
    worker.db_connection = object()
    # @asynchronous hands the function back with its signature.
    later(worker, {'x': 1})
    later(worker)  # type: ignore[call-arg]
    assert_type(ERROR_SERVER, Literal[1000])
    assert_type(ERROR_INVALID_METHOD, Literal[1001])
    error = TotoException(4242, 'x')
    assert_type(error.code, int)
    assert_type(error_info(error), 'Dict[str, Any]')
    assert_type(pid_path(0), str)
    assert_type(worker_pid_path(0), str)
    assert_type(process_count(), int)
    safe_define('example_option', default=1, type=int, help='an option', group='example')
    TotoWorkerService('worker.conf', processes=2).run()
    TotoHTTPWorkerService(processes=2).run()
    make_application('methods', path='/worker', serialization='json')


class Clock(TotoService):
    def main_loop(self) -> None:
        print(self.service_id)


def optional_future(conn: ZMQWorkerConnection) -> Optional['Future[Any]']:
    return conn.invoke('a.b')
