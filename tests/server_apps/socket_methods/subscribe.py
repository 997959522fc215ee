"""Forward every 'message' event to the socket, until it closes."""


def invoke(handler, parameters):
    def forward(message):
        handler.send_message({'event': message})
    handler.register_event_handler('message', forward, persist=True)
    return 'subscribed'
