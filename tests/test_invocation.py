"""toto.invocation and toto.exceptions as Toto 1.0.12 method modules use them.

The decorators are called here with handlers that have what a TotoServer
request has (a session, ``respond_raw``, ``redirect``) or, like a worker,
have not; the worker services in test_worker_apps.py and the differential
tests run them inside real services.
"""

import json

import pytest


# -- the codes and the exception -------------------------------------------------------

def test_error_codes_are_those_of_1_0_12():
    from toto import exceptions
    assert [(name, getattr(exceptions, name)) for name in exceptions.__all__[1:]] == [
        ('ERROR_SERVER', 1000), ('ERROR_INVALID_METHOD', 1001), ('ERROR_MISSING_METHOD', 1002),
        ('ERROR_MISSING_PARAMS', 1003), ('ERROR_NOT_AUTHORIZED', 1004),
        ('ERROR_USER_NOT_FOUND', 1005), ('ERROR_USER_ID_EXISTS', 1006),
        ('ERROR_INVALID_SESSION_ID', 1007), ('ERROR_INVALID_HMAC', 1008),
        ('ERROR_INVALID_RESPONSE_HMAC', 1009), ('ERROR_INVALID_USER_ID', 1010)]


def test_toto_exception_reads_as_its_dict_like_1_0_12_on_python_2():
    from toto.exceptions import TotoException
    error = TotoException(4242, 'msg')
    assert str(error) == repr(error) == "{'code': 4242, 'value': 'msg'}"


def test_a_star_import_gives_what_1_0_12_gave():
    namespace = {}
    exec('from toto.invocation import *', namespace)
    expected = set([
        'TotoException', 'options', 'format_exc', 'coroutine', 'Return', 'engine', 'TaskQueue',
        'logging', 'json', 'invocation_attributes', 'asynchronous', 'anonymous_session',
        'authenticated', 'optionally_authenticated', 'authenticated_with_parameter',
        'requires', 'raw_response', 'jsonp', 'error_redirect', 'default_parameters'])
    from toto import exceptions
    expected.update(name for name in exceptions.__all__)
    assert expected <= set(namespace)
    from toto.tasks import TaskQueue
    assert namespace['TaskQueue'] is TaskQueue
    assert namespace['json'] is json


# -- handlers: what a server request has, and a worker -----------------------------------

class Session(object):
    def __init__(self, user_id):
        self.user_id = user_id


class Request(object):
    """The parts of a TotoServer handler the decorators use."""

    def __init__(self, session=None, stored=None):
        self.session = session
        self.stored = stored or {}
        self.raw = []
        self.redirects = []
        self.created = 0

    def retrieve_session(self, session_id=None):
        if session_id is not None:
            self.session = self.stored.get(session_id)

    def create_session(self):
        self.created += 1
        self.session = Session('')

    def respond_raw(self, body, content_type):
        self.raw.append((body, content_type))

    def redirect(self, url):
        self.redirects.append(url)


class Worker(object):
    """A worker: no session, no raw responses, no redirects."""


def echo(handler, parameters):
    return parameters


# -- the decorators --------------------------------------------------------------------

def test_requires_lists_the_missing_names_in_python_2_set_order():
    from toto.invocation import TotoException, requires
    checked = requires('user_id', 'password')(echo)
    with pytest.raises(TotoException) as caught:
        checked(Worker(), {})
    assert caught.value.__dict__ == {'code': 1003,
                                     'value': 'Missing parameters: password, user_id'}
    assert checked(Worker(), {'user_id': 1, 'password': 2}) == {'user_id': 1, 'password': 2}


@pytest.mark.parametrize('names, order', [
    (('a', 'b', 'c'), 'a, c, b'),
    (('first_name', 'last_name', 'email', 'phone', 'zip'),
     'phone, first_name, last_name, email, zip'),
])
def test_missing_parameter_order_is_the_same_on_every_python(names, order):
    # The orders CPython 2.7 gives (checked there by the same test on py27).
    from toto.invocation import TotoException, requires
    with pytest.raises(TotoException) as caught:
        requires(*names)(echo)(Worker(), {})
    assert caught.value.value == 'Missing parameters: ' + order


def test_default_parameters_fill_only_what_is_missing():
    from toto.invocation import default_parameters
    filled = default_parameters({'page': 1, 'size': 20})(echo)
    assert filled(Worker(), {'size': 5}) == {'page': 1, 'size': 5}


def test_decorators_keep_asynchronous_and_the_name_in_any_order():
    from toto.invocation import asynchronous, default_parameters, requires

    def invoke(handler, parameters):
        """Does things."""
    one = requires('a')(asynchronous(default_parameters({'b': 1})(invoke)))
    other = asynchronous(requires('a')(invoke))
    for decorated in (one, other):
        assert decorated.asynchronous is True
        assert decorated.__name__ == 'invoke'
        assert decorated.__doc__.startswith('Does things.')
        assert '``a``' in decorated.__doc__


def test_authenticated_needs_a_session_with_a_user():
    from toto.invocation import TotoException, authenticated
    guarded = authenticated(echo)
    for request in (Request(), Request(Session(''))):
        with pytest.raises(TotoException) as caught:
            guarded(request, {})
        assert caught.value.__dict__ == {'code': 1004, 'value': 'Not authorized'}
    assert guarded(Request(Session('ada')), {'x': 1}) == {'x': 1}


def test_anonymous_session_creates_one_only_when_there_is_none():
    from toto.invocation import anonymous_session
    fresh, known = Request(), Request(Session('ada'))
    anonymous_session(echo)(fresh, {})
    anonymous_session(echo)(known, {})
    assert (fresh.created, fresh.session.user_id) == (1, '')
    assert (known.created, known.session.user_id) == (0, 'ada')


def test_authenticated_with_parameter_takes_the_session_id_out_and_lets_anonymous_in():
    from toto.invocation import TotoException, authenticated_with_parameter
    request = Request(stored={'s1': Session('')})
    parameters = {'session_id': 's1', 'x': 1}
    assert authenticated_with_parameter(echo)(request, parameters) == {'x': 1}
    with pytest.raises(TotoException) as caught:
        authenticated_with_parameter(echo)(Request(), {'session_id': 'nope'})
    assert caught.value.code == 1004


def test_optionally_authenticated_runs_either_way():
    from toto.invocation import optionally_authenticated
    assert optionally_authenticated(echo)(Request(), {'x': 1}) == {'x': 1}


def test_raw_response_sends_the_result_with_the_type_the_method_chose():
    from toto.invocation import raw_response

    def page(handler, parameters):
        handler.response_type = 'text/html'
        return '<p>hi</p>'
    request = Request()
    assert raw_response(page)(request, {}) is None
    assert request.raw == [('<p>hi</p>', 'text/html')]


@pytest.mark.parametrize('style', ['bare', 'named'])
def test_jsonp_wraps_the_answer_when_the_callback_parameter_is_there(style):
    from toto.invocation import jsonp
    decorated = jsonp(echo) if style == 'bare' else jsonp('cb')(echo)
    name = 'jsonp' if style == 'bare' else 'cb'
    request = Request()
    assert decorated(request, {name: 'show', 'a': 1}) is None
    assert request.raw == [('show({"a": 1})', 'text/javascript')]
    assert decorated(Request(), {'a': 2}) == {'a': 2}


def test_error_redirect_looks_up_code_then_status_code_then_default():
    from toto.invocation import TotoException, error_redirect

    class HTTPish(Exception):
        status_code = 404

    def fails_with(error):
        def invoke(handler, parameters):
            raise error
        return invoke
    routes = {'4242': '/teapot', '404': '/missing'}
    for error, target in [(TotoException(4242, 'x'), '/teapot'), (HTTPish(), '/missing'),
                          (ValueError('x'), '/error')]:
        request = Request()
        error_redirect(routes, '/error')(fails_with(error))(request, {})
        assert request.redirects == [target]
    with pytest.raises(ValueError):
        error_redirect(routes)(fails_with(ValueError('x')))(Request(), {})


@pytest.mark.parametrize('decorator', ['authenticated', 'anonymous_session',
                                       'optionally_authenticated',
                                       'authenticated_with_parameter', 'raw_response'])
def test_on_a_worker_the_request_decorators_answer_a_clear_error(decorator):
    import toto.invocation as invocation
    with pytest.raises(invocation.TotoException) as caught:
        getattr(invocation, decorator)(echo)(Worker(), {})
    assert caught.value.code == 1000
    assert caught.value.value.startswith('@%s needs a TotoServer request' % decorator)


def test_on_a_worker_error_redirect_lets_the_error_through():
    from toto.invocation import TotoException, error_redirect

    def invoke(handler, parameters):
        raise TotoException(4242, 'x')
    with pytest.raises(TotoException):
        error_redirect({'4242': '/x'})(invoke)(Worker(), {})


def test_engine_runs_a_generator_as_a_coroutine_on_every_tornado():
    from tornado import gen
    from tornado.concurrent import Future
    from tornado.ioloop import IOLoop

    from toto.invocation import engine

    @engine
    def work(value, done):
        yield gen.moment
        done.set_result(value)

    def start():
        done = Future()
        assert work(7, done) is None
        return done

    loop = IOLoop(make_current=False)
    try:
        assert loop.run_sync(start, timeout=5) == 7
    finally:
        loop.close()
