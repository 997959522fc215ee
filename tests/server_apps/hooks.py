"""socket_opened_method and socket_closed_method of the websocket tests."""

closed = []


def opened(socket):
    socket.send_message({'opened': True, 'session_id': socket.session_id})


def closed_socket(socket):
    closed.append(socket.session_id)
