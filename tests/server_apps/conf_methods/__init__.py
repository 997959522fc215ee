"""A method package that defines an option of its own, set from the conf file or command line."""

from tornado.options import define

define('greeting', default='hello from the default', type=str,
       help='What the greet method answers (an option of the test app)')
