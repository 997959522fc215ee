"""receive_message: a long poll. The answer, {"message": ...}, comes with the next message."""

from toto.invocation import asynchronous


@asynchronous
def invoke(handler, parameters):
    def deliver(message):
        handler.respond(result={'message': message})
    # Handlers run on the server's loop and are dropped when the request ends (a client that
    # hangs up does not leave one behind).
    handler.register_event_handler('message', deliver, deregister_on_finish=True)
