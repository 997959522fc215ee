"""A method package written the way Toto applications write them (tests/test_worker_apps.py).

It defines an option of its own, which a conf file or the command line may set.
"""
from toto.options import safe_define

safe_define('app_greeting', default='Hello', type=str, help='how app_methods.greet greets')
