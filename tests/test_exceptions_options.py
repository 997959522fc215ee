"""toto.exceptions, toto.invocation and toto.options (SPEC 1)."""

import logging
import pickle

from tornado.options import options


def test_toto_exception_keeps_code_and_value():
    from toto.exceptions import TotoException
    error = TotoException(4242, 'x')
    assert (error.code, error.value) == (4242, 'x')
    assert error.__dict__ == {'code': 4242, 'value': 'x'}


def test_toto_exception_str_and_repr_show_its_dict():
    from toto.exceptions import TotoException
    error = TotoException(-1, 'Timeout')
    # As str(__dict__) read on a Python 2 without hash randomization, on
    # every interpreter: code, then value.
    assert str(error) == repr(error) == "{'code': -1, 'value': 'Timeout'}"
    error.extra = [1]
    assert str(error) == "{'code': -1, 'value': 'Timeout', 'extra': [1]}"


def test_toto_exception_can_be_raised_caught_and_pickled():
    from toto.exceptions import TotoException
    try:
        raise TotoException(1000, 'boom')
    except TotoException as caught:
        copy = pickle.loads(pickle.dumps(caught, 2))
    assert isinstance(copy, TotoException)
    assert copy.__dict__ == {'code': 1000, 'value': 'boom'}


def test_error_codes_run_from_server_to_invalid_user_id():
    from toto import exceptions
    assert exceptions.ERROR_SERVER == 1000
    assert exceptions.ERROR_INVALID_USER_ID == 1010
    codes = [getattr(exceptions, name) for name in dir(exceptions) if name.startswith('ERROR_')]
    assert sorted(codes) == list(range(1000, 1011))


def test_method_modules_star_import_toto_invocation():
    namespace = {}
    exec('from toto.invocation import *', namespace)
    from toto.exceptions import ERROR_SERVER, TotoException
    assert namespace['TotoException'] is TotoException
    assert namespace['ERROR_SERVER'] == ERROR_SERVER
    assert namespace['ERROR_INVALID_USER_ID'] == 1010
    assert callable(namespace['asynchronous'])


def test_asynchronous_marks_the_method_and_returns_it():
    from toto.invocation import asynchronous

    def invoke(worker, parameters):
        return parameters

    assert asynchronous(invoke) is invoke
    assert invoke.asynchronous is True
    assert invoke(None, {'a': 1}) == {'a': 1}


def test_safe_define_twice_logs_instead_of_raising(caplog):
    from toto.options import safe_define
    caplog.set_level(logging.DEBUG)
    name = 'toto_test_safe_define_option'
    safe_define(name, default=7, type=int, help='first definition')
    caplog.clear()
    safe_define(name, default=8, type=int, help='second definition')
    assert getattr(options, name) == 7, 'the first definition stays'
    messages = [record.getMessage().replace('-', '_') for record in caplog.records]
    assert any(name in message for message in messages), messages


def test_safe_define_of_a_worker_option_already_defined_is_harmless():
    import toto.workerconnection  # noqa: F401 - defines worker_timeout
    from toto.options import safe_define
    safe_define('worker_timeout', default=99.0, type=float)
    assert options.worker_timeout != 99.0
