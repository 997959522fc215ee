"""``client_error``: write an error a browser reported into the server's log.

It takes ``client_error`` (the text to log) and ``client_type``, which must be
``browser_js`` (as ``toto.js``'s ``registerErrorHandler()`` sends it) for anything to be
logged. The answer says whether it was: ``{"logged": true}`` or ``{"logged": false}``.

The text is the client's: it is logged on one line (line breaks escaped) and cut to
:data:`MAX_LOGGED_CHARACTERS`, so that a client cannot forge or flood log lines.
"""

from __future__ import absolute_import, division, print_function

import logging

import six

from toto.invocation import requires

__all__ = ['MAX_LOGGED_CHARACTERS', 'invoke']

logger = logging.getLogger('toto.methods.client_error')

#: Longest client text written to the log; longer text is cut and its length noted.
MAX_LOGGED_CHARACTERS = 4096


@requires('client_error', 'client_type')
def invoke(handler, parameters):
    """Log ``client_error`` when ``client_type`` is ``browser_js``."""
    if parameters['client_type'] != 'browser_js':
        return {'logged': False}
    text = parameters['client_error']
    if not isinstance(text, six.string_types):
        text = str(text)
    text = text.replace('\\', '\\\\').replace('\r', '\\r').replace('\n', '\\n')
    if len(text) > MAX_LOGGED_CHARACTERS:
        text = '%s... (%d characters)' % (text[:MAX_LOGGED_CHARACTERS], len(text))
    logger.error('client error: %s', text)
    return {'logged': True}
