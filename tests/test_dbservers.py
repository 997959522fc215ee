"""The database servers of tests/dbservers.py start, answer, stop, come back and pause.

Each check speaks the server's own protocol over a raw socket (no client library), so it
runs on every Python of the matrix.
"""

from __future__ import absolute_import, division, print_function

import os
import socket
import struct

import pytest

import dbservers

KINDS = sorted(dbservers.SERVERS)


def _server(kind):
    reason = dbservers.missing(kind)
    if reason:
        if os.environ.get('CI'):
            pytest.fail(reason)
        pytest.skip(reason)
    return dbservers.SERVERS[kind][0]()


def _exchange(port, request, timeout=5.0):
    connection = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        if request:
            connection.sendall(request)
        return connection.recv(4096)
    finally:
        connection.close()


def _bson_hello():
    hello = b'\x10hello\x00' + struct.pack('<i', 1)
    database = b'\x02$db\x00' + struct.pack('<i', 6) + b'admin\x00'
    body = hello + database + b'\x00'
    return struct.pack('<i', len(body) + 4) + body


def _greeting(kind, port):
    """What the server says first, in its own protocol."""
    if kind == 'redis':
        return _exchange(port, b'PING\r\n')
    if kind == 'mariadb':
        return _exchange(port, None)
    if kind == 'postgres':
        return _exchange(port, struct.pack('>ii', 8, 80877103))  # SSLRequest: 'N' or 'S'
    document = _bson_hello()
    message = struct.pack('<iiii', 16 + 4 + 1 + len(document), 1, 0, 2013)
    return _exchange(port, message + struct.pack('<i', 0) + b'\x00' + document)


EXPECTED = {
    'redis': lambda reply: reply.startswith(b'+PONG'),
    'mariadb': lambda reply: b'MariaDB' in reply,
    'postgres': lambda reply: reply in (b'N', b'S'),
    'mongodb': lambda reply: b'maxWireVersion' in reply,
}


@pytest.mark.parametrize('kind', KINDS)
def test_a_server_answers_in_its_protocol_and_again_after_a_restart(kind):
    with _server(kind) as server:
        port = server.port
        assert EXPECTED[kind](_greeting(kind, port))
        server.stop()
        with pytest.raises(socket.error):
            _greeting(kind, port)
        server.start()
        assert server.port == port
        assert EXPECTED[kind](_greeting(kind, port))
    assert not os.path.exists(server.directory)


def test_redis_keeps_its_data_across_a_restart_and_answers_nothing_while_paused():
    with _server('redis') as server:
        assert _exchange(server.port, b'SET toto 1\r\n') == b'+OK\r\n'
        server.restart()
        assert _exchange(server.port, b'GET toto\r\n') == b'$1\r\n1\r\n'
        with server.paused():
            with pytest.raises(socket.timeout):
                _exchange(server.port, b'PING\r\n', timeout=0.3)
        assert _exchange(server.port, b'PING\r\n') == b'+PONG\r\n'
