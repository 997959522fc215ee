"""Writing a Toto HTTP answer: the response document, its encoding, signature and CORS headers.

The document is 1.0.12's: ``result`` when not None,
``error`` when there is one, ``batch`` for a batch, and ``session`` when the
request has a session. Its keys come in the order Python 2 gave them, which
is what 1.0.12's clients received, on every Python::

    document = response_document(result, error, None, handler.session)
    body = encode(document, 'application/json', settings)      # '{"session": ..., "result": 1}'
    signature = response_signature(session.session_id, body)  # what x-toto-hmac signs

JSON is ``json.dumps`` with its defaults (``", "``, ``": "``, ASCII with
``\\uXXXX`` escapes), as in 1.0.12.
"""

from __future__ import absolute_import, division, print_function

import json
import logging

import six

from toto._security import shortened
from toto._websession import HMAC_HEADER, normalized_origin
from toto.exceptions import ERROR_SERVER

logger = logging.getLogger('toto.handler')


def session_info(session):
    """The ``session`` object of an answer: ``expires``, ``user_id``, ``session_id``.

    1.0.12 sent ``str(user_id)``, which failed on a non-ASCII id with an HTML
    500; the id is now sent as the text it is.
    """
    user_id = session.user_id
    if not isinstance(user_id, six.string_types):
        if isinstance(user_id, bytes):
            user_id = user_id.decode('utf-8', 'replace')
        else:
            user_id = str(user_id)
    # Insertion order is Python 2's iteration order of these three keys.
    return {'expires': session.expires, 'user_id': user_id, 'session_id': session.session_id}


def response_document(result, error, batch_results, session):
    """The answer's dict, keys in 1.0.12's (Python 2) order: session, batch, result, error."""
    response = {}
    if session:
        response['session'] = session_info(session)
    if batch_results is not None:
        # 1.0.12 left out an empty batch (and never answered it); {} is sent now.
        response['batch'] = batch_results
    if result is not None:
        response['result'] = result
    if error:
        response['error'] = error
    return response


def encode(document, response_type, settings):
    """``document`` as the body of ``response_type`` (JSON unless BSON or MessagePack).

    A result that cannot be encoded is answered as an ``ERROR_SERVER`` error
    saying why (1.0.12 answered an HTML 500).
    """
    try:
        if response_type == 'application/json':
            return _JSON.encode(document)
        return _encode(document, response_type, settings)
    except Exception as error:  # TypeError, ValueError, OverflowError, bson's InvalidDocument
        logger.error('cannot encode an answer as %s: %s', response_type, error)
        failure = {'code': ERROR_SERVER,
                   'value': 'The answer cannot be encoded as %s: %s'
                            % (response_type, shortened(str(error), 200))}
        replacement = dict((key, value) for key, value in document.items()
                           if key == 'session')
        replacement['error'] = failure
        return _encode(replacement, response_type, settings)


def _encode(document, response_type, settings):
    if response_type == 'application/bson' and settings.bson is not None:
        return settings.bson.encode(document)
    if response_type == 'application/msgpack' and settings.msgpack is not None:
        return settings.msgpack.dumps(document)
    return _JSON.encode(document)


def _bytes_as_text(value):
    # Python 2's json.dumps writes a str as UTF-8 text, and 1.0.12 apps answer
    # str (an uploaded file's body, say): Python 3 bytes are written the same way.
    if isinstance(value, bytes):
        return value.decode('utf-8')
    raise TypeError('Object of type %s is not JSON serializable' % type(value).__name__)


# json.dumps' defaults (", ", ": ", ASCII), and bytes as UTF-8 text.
_JSON = json.JSONEncoder(default=_bytes_as_text)


def response_signature(session_id, body):
    """What 1.0.12's response HMAC signs: the session id followed by the body."""
    if isinstance(body, six.text_type):
        return session_id + body
    if isinstance(session_id, six.text_type):
        session_id = session_id.encode('utf-8')
    return session_id + bytes(body)


def request_signature(request):
    """What 1.0.12's request HMAC signs: method, URI (with the query) and body, as bytes.

    Tornado gives the method and URI as the request line's bytes read as
    Latin-1 (Python 3), so that encoding gives back the bytes the client signed.
    """
    head = request.method + request.uri
    if isinstance(head, six.text_type):
        head = head.encode('latin-1')
    body = request.body or b''
    return head + (body if isinstance(body, bytes) else bytes(body))


# -- CORS --------------------------------------------------------------------------------

#: Access-Control-Allow-Methods: 1.0.12's set of verbs, in the order Python 2 listed it.
ALLOWED_METHODS = 'HEAD,POST,OPTIONS,GET'


def add_cors_headers(handler, settings):
    """The CORS headers of every answer: the allowed origin, and x-toto-hmac exposed."""
    if settings.allow_origin_header is not None:
        # Known safe values: tornado's checks of add_header() are not needed.
        headers = handler._headers
        headers.add('Access-Control-Allow-Origin', settings.allow_origin_header)
        headers.add('Access-Control-Expose-Headers', HMAC_HEADER)
    else:
        add_origin_header(handler, settings)
        handler.add_header('Access-Control-Expose-Headers', HMAC_HEADER)


def add_origin_header(handler, settings):
    """Access-Control-Allow-Origin: ``--allow_origin`` as it is, or the request's listed origin."""
    if settings.allow_origin_header is not None:
        handler.add_header('Access-Control-Allow-Origin', settings.allow_origin_header)
    elif settings.echo_allowed_origin:
        origin = handler.request.headers.get('Origin')
        handler.add_header('Vary', 'Origin')
        if origin and normalized_origin(origin) in settings.trusted_origins:
            handler.add_header('Access-Control-Allow-Origin', origin)


def allowed_headers(settings, requested):
    """Access-Control-Allow-Headers of a preflight.

    Toto's four headers and ``--cors_allow_headers``; with ``*`` there, also
    the headers the preflight asks for (1.0.12 allowed all of those).
    """
    if not settings.echo_requested_headers or not requested:
        return settings.allowed_headers_header
    names = list(settings.allowed_headers)
    for name in requested.lower().replace(' ', '').split(','):
        if name and name not in names:
            names.append(name)
    return ','.join(names)
