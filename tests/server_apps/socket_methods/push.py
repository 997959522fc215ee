"""Send two messages of its own (send_message), then answer."""


def invoke(handler, parameters):
    handler.send_message({'pushed': 1})
    handler.send_message({'pushed': 2}, message_id='side')
    return 'done'
