from tornado.options import options


def invoke(handler, parameters):
    return options.greeting
