"""A method module that defines a tornado option (set by the conf file) and reads it."""

from tornado.options import define

from toto.invocation import *

define('app_greeting', default='hello from the default', type=str,
       help='set by the conf file of the differential tests')


def invoke(handler, parameters):
    return {'app_greeting': options.app_greeting}
