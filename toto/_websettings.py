"""What :class:`toto.handler.TotoHandler` reads from the options, read once.

``TotoHandler.configure()`` builds a :class:`HandlerSettings` from
:data:`tornado.options.options` and keeps it on the class; every request then
reads plain attributes instead of options (an option read goes through
tornado's option registry and costs more than the rest of a small request)::

    from toto._websettings import HandlerSettings

    settings = HandlerSettings.from_options()
    settings.method_root            # the imported --method_module package
    settings.allow_origin_header    # the Access-Control-Allow-Origin value, or None

Calling ``configure()`` again after the options change builds a new one.
"""

from __future__ import absolute_import, division, print_function

import importlib
import logging
import math
import re

from tornado.options import options

import toto._server_options  # noqa: F401 - defines the options read here
from toto._websession import normalized_origin

logger = logging.getLogger('toto.handler')

#: Headers a preflight always allows (1.0.12's set, in the order Python 2 listed it).
BASE_ALLOWED_HEADERS = ('origin', 'x-toto-session-id', 'x-toto-hmac', 'content-type')
#: The value of Access-Control-Allow-Methods (1.0.12's set, in Python 2's order).
ALLOWED_METHODS_HEADER = 'HEAD,POST,OPTIONS,GET'

# Tornado's own default request body limit (its max_buffer_size), used when the
# server defines no max_body_size option.
_TORNADO_BODY_LIMIT = 100 * 1024 * 1024
_HEADER_NAME = re.compile(r'^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$')


def _option(name, default):
    # Options another module defines (the server's, the database's) may be absent
    # when the handler is used on its own.
    return getattr(options, name) if name in options else default


class HandlerSettings(object):
    """Everything a request needs from the options, as plain attributes."""

    def __init__(self, **values):
        self.__dict__.update(values)

    @classmethod
    def from_options(cls):
        method_module = options.method_module
        method_root = importlib.import_module(method_module) if method_module else None
        allow_origin = options.allow_origin
        trusted_origins, origin_header, echo_origin = _origin_settings(allow_origin)
        extra_headers = [name.strip().lower() for name in (options.cors_allow_headers or [])
                         if name and name.strip()]
        echo_headers = '*' in extra_headers
        extra_headers = [name for name in extra_headers if name != '*']
        for name in extra_headers:
            if not _HEADER_NAME.match(name):
                raise ValueError('--cors_allow_headers: %r is not a header name' % (name,))
        allowed = list(BASE_ALLOWED_HEADERS)
        allowed.extend(name for name in extra_headers if name not in allowed)
        bson_class = _load_bson() if options.bson_enabled else None
        msgpack_module = _load_msgpack() if options.msgpack_enabled else None
        event_mode = _option('event_mode', 'off')
        longest_session = max(_option('session_ttl', 31536000) or 0,
                              _option('anon_session_ttl', 86400) or 0)
        max_body_size = _option('max_body_size', None)
        return cls(
            method_root=method_root,
            method_select=options.method_select,
            allow_origin=allow_origin,
            allow_origin_header=origin_header,
            echo_allowed_origin=echo_origin,
            trusted_origins=trusted_origins,
            allowed_headers=tuple(allowed),
            allowed_headers_header=','.join(allowed),
            echo_requested_headers=echo_headers,
            hmac_enabled=bool(options.hmac_enabled),
            bson=bson_class,
            msgpack=msgpack_module,
            use_cookies=bool(options.use_cookies),
            secure_cookies=bool(options.secure_cookies),
            cookie_domain=options.cookie_domain or None,
            cookie_httponly=bool(options.cookie_httponly),
            # A signed cookie is good for as long as the longest session lasts
            # (tornado's default of 31 days logged out users whose sessions lived on).
            cookie_max_age_days=max(31, int(math.ceil(longest_session / 86400.0)) + 1),
            allow_cross_site_cookies=bool(options.allow_cross_site_cookies),
            single_content_type=bool(options.single_content_type),
            serve_tracebacks=bool(options.serve_tracebacks),
            debug=bool(_option('debug', False)),
            event_mode=event_mode,
            max_body_size=(int(max_body_size) if max_body_size and max_body_size > 0
                           else _TORNADO_BODY_LIMIT),
        )


def _origin_settings(allow_origin):
    """(trusted origins, fixed header value or None, echo the request's origin).

    ``*`` or one origin is sent as it is, as in 1.0.12; a comma-separated list
    answers each listed origin with itself (a browser accepts one origin only).
    """
    value = (allow_origin or '').strip()
    if not value:
        return frozenset(), None, False
    if ',' not in value:
        trusted = frozenset() if value == '*' else frozenset([normalized_origin(value)])
        return trusted, value, False
    origins = [normalized_origin(origin) for origin in value.split(',') if origin.strip()]
    if '*' in origins:
        raise ValueError('--allow_origin: * cannot be part of a list of origins')
    return frozenset(origins), None, True


def _load_bson():
    try:
        module = importlib.import_module('bson')
    except ImportError:
        logger.warning('--bson_enabled: the bson module (from pymongo) is not installed; '
                       'application/bson bodies are not read')
        return None
    bson_class = getattr(module, 'BSON', None)
    if bson_class is None:
        logger.warning("--bson_enabled: the installed bson module is not pymongo's "
                       '(it has no BSON class); application/bson bodies are not read')
    return bson_class


def _load_msgpack():
    try:
        return importlib.import_module('msgpack')
    except ImportError:
        logger.warning('--msgpack_enabled: the msgpack module is not installed; '
                       'application/msgpack bodies are not read')
        return None
