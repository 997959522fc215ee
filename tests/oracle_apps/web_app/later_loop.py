"""``@asynchronous``: answers from a callback on the request's own IOLoop."""

from tornado.ioloop import IOLoop

from toto.invocation import *


@asynchronous
def invoke(handler, parameters):
    IOLoop.current().add_callback(lambda: handler.respond(result={'loop': parameters}))
