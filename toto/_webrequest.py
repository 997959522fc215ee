"""Reading a Toto HTTP request: its body, its parameters and the name of its method.

These are 1.0.12's rules, in functions the handler
calls once per request::

    body, response_type = decode_body(request.body, content_type, request, settings)
    parameters = body_parameters(body)
    name = method_name_both(path, body)      # or method_name_url / method_name_parameter

A body the handler cannot read raises :class:`RequestError`, which the handler
answers with its HTTP status and a Toto error body, where 1.0.12 answered a
tornado HTML page with status 500.
"""

from __future__ import absolute_import, division, print_function

import json
import re

import six
from tornado.httputil import parse_body_arguments

from toto._security import shortened
from toto.exceptions import ERROR_MISSING_METHOD, ERROR_SERVER, TotoException

#: A JSONP callback: a JavaScript name, or a path of names and numeric indexes
#: (``cb``, ``jQuery123_456``, ``app.callbacks[3]``).
_JSONP_CALLBACK = re.compile(r'^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*$')
_MAX_CALLBACK_LENGTH = 256


class RequestError(TotoException):
    """A request refused before (or instead of) calling its method: HTTP 400.

    It is a :class:`~toto.exceptions.TotoException`, so the client reads the
    usual ``{"error": {"code": ..., "value": ...}}``; ``status_code`` (a class
    attribute, so the error's ``__dict__`` stays ``code`` and ``value``) is the
    HTTP status of that answer, where Toto's own errors keep 200.
    """

    status_code = 400


class BodyTooLarge(RequestError):
    """The request body is over the size limit: HTTP 413."""

    status_code = 413


class CrossSiteRefused(RequestError):
    """A session cookie sent by another site's page: HTTP 403."""

    status_code = 403


def bad_request(message, error_class=RequestError):
    """A :class:`RequestError` with ``ERROR_SERVER``, the code 1.0.12 answered for failures."""
    return error_class(ERROR_SERVER, message)


def valid_jsonp_callback(callback):
    """True if ``callback`` is safe to write as the function a JSONP answer calls."""
    return (isinstance(callback, six.string_types) and len(callback) <= _MAX_CALLBACK_LENGTH
            and _JSONP_CALLBACK.match(callback) is not None)


def jsonp_parameter(invoke):
    """The parameter naming the JSONP callback if ``invoke`` is wrapped by ``@jsonp``, else None.

    The handler checks the callback before the method runs, since
    :func:`toto.invocation.jsonp` writes it into the answer unchecked.
    """
    try:
        return _jsonp_parameters[invoke]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable
        return None
    name = _find_jsonp_wrapper(invoke)
    if len(_jsonp_parameters) < _MAX_REMEMBERED:
        _jsonp_parameters[invoke] = name
    return name


_jsonp_parameters = {}
_MAX_REMEMBERED = 10000
_jsonp_wrapper_code = []


def _find_jsonp_wrapper(invoke):
    # Decorators close over the function they wrap: follow the closures (a
    # few steps) to a function made by @jsonp, and read its parameter name.
    if not _jsonp_wrapper_code:
        from toto.invocation import jsonp
        _jsonp_wrapper_code.append(jsonp('callback')(_jsonp_probe).__code__)
    wrapper_code = _jsonp_wrapper_code[0]
    pending, seen = [invoke], set()
    while pending and len(seen) < 64:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        code = getattr(function, '__code__', None)
        cells = getattr(function, '__closure__', None) or ()
        if code is wrapper_code:
            cell = dict(zip(code.co_freevars, cells)).get('name')
            return cell.cell_contents if cell is not None else None
        for cell in cells:
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if hasattr(value, '__code__'):
                pending.append(value)
    return None


def _jsonp_probe(handler, parameters):
    return None


# -- bodies --------------------------------------------------------------------------

def decode_json(data):
    """The JSON document in ``data`` (bytes), or None for an empty body."""
    if not data:
        # 1.0.12 failed with an HTML 500; an empty body now means no parameters.
        return None
    try:
        if six.PY3 and isinstance(data, (bytes, bytearray)):
            data = data.decode('utf-8')
        return json.loads(data)
    except UnicodeDecodeError:
        raise bad_request('The request body is not UTF-8 text')
    except ValueError as error:
        raise bad_request('The request body is not valid JSON: %s' % shortened(str(error), 200))
    except RuntimeError:  # RecursionError on Python 3
        raise bad_request('The request body is nested too deeply')


def decode_msgpack(msgpack, data):
    try:
        return msgpack.loads(data)
    except Exception as error:  # the C unpacker has several error types
        raise bad_request('The request body is not valid MessagePack: %s'
                          % shortened(str(error), 200))


def decode_bson(bson_class, data):
    try:
        return bson_class(data).decode()
    except Exception as error:  # bson raises InvalidBSON, and others for truncated data
        raise bad_request('The request body is not valid BSON: %s' % shortened(str(error), 200))


def decode_body(data, content_type, request, settings):
    """``(body, response type)`` of a POST, by its Content-Type as 1.0.12 matched it.

    A missing type counts as JSON; types are matched by prefix. Form and
    multipart bodies become ``{'parameters': ...}``; an unknown type gives no
    body (``None``), hence no parameters.
    """
    if content_type.startswith('application/json'):
        return decode_json(data), 'application/json'
    if content_type.startswith('application/x-www-form-urlencoded'):
        parse_form(request, content_type)
        return {'parameters': text_arguments(request.arguments)}, 'application/json'
    if content_type.startswith('multipart/form-data'):
        parse_form(request, content_type)
        return {'parameters': {'arguments': text_arguments(request.arguments),
                               'files': request.files}}, 'application/json'
    if settings.bson is not None and content_type.startswith('application/bson'):
        return decode_bson(settings.bson, data), 'application/bson'
    if settings.msgpack is not None and content_type.startswith('application/msgpack'):
        return decode_msgpack(settings.msgpack, data), 'application/msgpack'
    return None, 'application/json'


def parse_form(request, content_type):
    """Read a form body into ``request`` as tornado does for handlers that do not stream.

    ``request.body_arguments`` and ``request.files`` get the body's fields,
    which also join the query's in ``request.arguments`` (1.0.12 passed both).
    """
    try:
        parse_body_arguments(content_type, request.body, request.body_arguments, request.files,
                             request.headers)
    except Exception as error:  # tornado 6 raises HTTPInputError, older ones log and go on
        raise bad_request('The form body cannot be read: %s' % shortened(str(error), 200))
    for name, values in request.body_arguments.items():
        request.arguments.setdefault(name, []).extend(values)


if six.PY3:
    def _text(value, name):
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            raise bad_request('The value of %s is not UTF-8 text' % shortened(repr(name), 60))

    def text_arguments(arguments):
        """Form arguments as text lists: Python 3 tornado gives bytes, 1.0.12's Python 2 str."""
        return dict((name, [_text(value, name) for value in values])
                    for name, values in arguments.items())
else:
    def text_arguments(arguments):
        """Form arguments as 1.0.12 passed them (lists of str)."""
        return dict(arguments)


def query_parameters(arguments):
    """GET parameters: one value gives a string, several a list (1.0.12's rule)."""
    parameters = {}
    for name, values in text_arguments(arguments).items():
        parameters[name] = values[0] if len(values) == 1 else values
    return parameters


def body_parameters(body):
    """``body['parameters']`` when it is there and truthy, else the whole body, else ``{}``."""
    if isinstance(body, dict):
        parameters = body.get('parameters')
        return parameters if parameters else body
    return body if body else {}


# -- the method's name (method_select) -------------------------------------------------

def _missing_method():
    return TotoException(ERROR_MISSING_METHOD, 'Missing method.')


def method_name_both(path, body):
    """``both`` (and any unknown method_select): the URL path wins, then ``body['method']``."""
    if path:
        return path.replace('/', '.')
    if isinstance(body, dict) and 'method' in body:
        return body['method']
    raise _missing_method()


def method_name_url(path, body):
    """``url``: the path only."""
    if path:
        return path.replace('/', '.')
    raise _missing_method()


def method_name_parameter(path, body):
    """``parameter``: ``body['method']`` only."""
    if isinstance(body, dict) and 'method' in body:
        return body['method']
    raise _missing_method()


METHOD_NAME_RULES = {
    'url': method_name_url,
    'parameter': method_name_parameter,
    'both': method_name_both,
}
