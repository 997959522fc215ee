"""How a Toto request carries its session: the header, the cookie, the request HMAC.

A client names its session in the ``x-toto-session-id`` header, or, with
``--use_cookies``, in the ``toto-session-id`` cookie (signed with tornado's
secure cookies when ``--secure_cookies``). With ``--hmac_enabled`` the
request must carry ``x-toto-hmac``: base64(HMAC-SHA1(session key, method +
URI + body)). The handler calls these functions from ``retrieve_session``
and ``create_session``::

    session_id, from_cookie = requested_session_id(handler, settings)
    if from_cookie:
        refuse_cross_site(handler.request, settings)
    ...
    set_session_cookie(handler, session, settings)

A browser sends a site's cookies with requests any other page makes (a form
post, an image, ``fetch`` without CORS), so a session that came from the
cookie is refused (403, ``ERROR_NOT_AUTHORIZED``) when the request comes from
another site, unless ``--allow_cross_site_cookies``. A session id in the
header proves the caller read it, so those requests are never refused.
"""

from __future__ import absolute_import, division, print_function

import logging

import six
from six.moves.urllib.parse import urlsplit

from toto._webrequest import CrossSiteRefused
from toto.exceptions import ERROR_NOT_AUTHORIZED

logger = logging.getLogger('toto.handler')

SESSION_HEADER = 'x-toto-session-id'
HMAC_HEADER = 'x-toto-hmac'
SESSION_COOKIE = 'toto-session-id'

# Sec-Fetch-Site values of requests a page of this origin made, or the user typed.
_OWN_REQUESTS = frozenset(['same-origin', 'none'])
_DEFAULT_PORTS = {'http': '80', 'https': '443'}


def requested_session_id(handler, settings):
    """``(session id, came from the cookie)``; the header wins, as in 1.0.12."""
    session_id = handler.request.headers.get(SESSION_HEADER)
    if session_id or not settings.use_cookies:
        return session_id, False
    if settings.secure_cookies:
        session_id = handler.get_secure_cookie(SESSION_COOKIE,
                                               max_age_days=settings.cookie_max_age_days)
        if isinstance(session_id, bytes) and six.PY3:
            session_id = session_id.decode('ascii', 'replace')
    else:
        session_id = handler.get_cookie(SESSION_COOKIE)
    return session_id, bool(session_id)


def set_session_cookie(handler, session, settings):
    """Send the session's cookie: its real expiry, HttpOnly, Secure over https.

    1.0.12 treated the expiry time as a number of days (the cookie lasted
    about 58 years) and set neither HttpOnly nor Secure.
    """
    attributes = {'domain': settings.cookie_domain, 'expires': session.expires, 'path': '/'}
    if settings.cookie_httponly:
        attributes['httponly'] = True
    if handler.request.protocol == 'https':
        attributes['secure'] = True
    if settings.secure_cookies:
        handler.set_secure_cookie(SESSION_COOKIE, session.session_id, expires_days=None,
                                  **attributes)
    else:
        handler.set_cookie(SESSION_COOKIE, session.session_id, **attributes)


def refuse_cross_site(request, settings):
    """Raise :class:`~toto._webrequest.CrossSiteRefused` (403) if another site sent ``request``.

    A browser says where a request comes from in ``Sec-Fetch-Site`` (current
    browsers), ``Origin`` (cross-origin requests, and every POST) or
    ``Referer``; a request with none of them is not a browser's, or cannot
    be told apart, and passes. Origins listed in ``--allow_origin`` are
    trusted.
    """
    if not cookie_refused(request, settings):
        return
    logger.info('refused the session cookie of a cross-site request to %s',
                request.path[:200])
    raise CrossSiteRefused(ERROR_NOT_AUTHORIZED,
                           'Cross-site request refused: a session cookie is only accepted '
                           'from this site')


def cookie_refused(request, settings):
    """True when :func:`refuse_cross_site` refuses ``request``'s session cookie."""
    return not settings.allow_cross_site_cookies and _is_cross_site(request, settings)


def _is_cross_site(request, settings):
    headers = request.headers
    fetch_site = headers.get('Sec-Fetch-Site')
    origin = headers.get('Origin')
    if fetch_site is not None:
        if fetch_site in _OWN_REQUESTS:
            return False
        return not (origin and normalized_origin(origin) in settings.trusted_origins)
    if origin is None:
        origin = headers.get('Referer')
        if not origin:
            return False
    if origin == 'null':  # sandboxed frames, data: URLs, some redirects
        return True
    normalized = normalized_origin(origin)
    if normalized in settings.trusted_origins:
        return False
    return _host_netloc(normalized.partition('://')[2]) != _host_netloc(request.host)


def normalized_origin(url):
    """``scheme://host[:port]`` of an Origin or Referer, lowercased, default port dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ''
    scheme = (parts.scheme or '').lower()
    host = (parts.hostname or '').lower()
    if ':' in host:
        host = '[%s]' % host
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        host = '%s:%d' % (host, port)
    return '%s://%s' % (scheme, host)


def _host_netloc(host):
    # The Host header has no scheme: a default port of either is dropped on both sides.
    host = (host or '').strip().lower()
    for port in (':80', ':443'):
        if host.endswith(port):
            return host[:-len(port)]
    return host
