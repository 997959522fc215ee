"""Batch requests: several method calls in one request, answered together.

A body ``{"batch": {"<key>": {"method": ..., "parameters": ...}, ...}}`` runs
each entry, in the sorted order of the keys, one after the other (an entry
that returns a Future is awaited before the next starts; an
``@asynchronous`` one is not), and answers
``{"batch": {"<key>": {"result": ...} | {"error": {...}}}}`` once every
entry has answered. Each entry's method gets a
:class:`BatchHandlerProxy` instead of the handler, so that its
``respond()`` answers its own key::

    def invoke(handler, parameters):        # handler is a BatchHandlerProxy here
        handler.respond(result={'done': True})
"""

from __future__ import absolute_import, division, print_function

import logging
from uuid import uuid4

from six.moves import _thread
from tornado import gen

from toto._webrequest import bad_request

logger = logging.getLogger('toto.handler')


class BatchHandlerProxy(object):
    """Stands in for the handler in one entry of a batch.

    ``handler``, ``request_key``, ``transaction_id`` (a new uuid4) and
    ``async`` belong to the proxy; every other attribute is read from and
    written to ``handler``. :meth:`respond` records the entry's answer, and
    the batch is answered when the last entry is in.
    """

    _non_proxy_keys = frozenset(['handler', 'request_key', 'async', 'transaction_id'])

    def __init__(self, handler, request_key):
        self.handler = handler
        self.request_key = request_key
        self.transaction_id = uuid4()

    def __getattr__(self, name):
        if name == 'handler':  # before __init__ set it (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.handler, name)

    def __setattr__(self, name, value):
        if name in self._non_proxy_keys:
            self.__dict__[name] = value
        else:
            setattr(self.handler, name, value)

    def respond(self, result=None, error=None, allow_async=True):
        """Record this entry's ``result`` or ``error``; callable from any thread."""
        handler = self.handler
        if (_thread.get_ident() != handler._loop_thread
                or (allow_async and getattr(self, 'async'))):
            handler._io_loop.add_callback(self.respond, result, error, False)
            return
        _record(handler, self, result, error)


def _record(handler, proxy, result, error):
    results = handler.batch_results
    key = proxy.request_key
    if key in results or handler._finished:
        logger.warning('batch entry %r answered twice (or after the answer); ignored', key)
        return
    handler._run_after_hook(proxy.transaction_id)
    if error is not None:
        results[key] = {'error': error if isinstance(error, dict) and error
                        else handler.error_info(error)}
    else:
        results[key] = {'result': result}
    if len(results) == len(handler.request_keys):
        handler.respond(batch_results=results, allow_async=False)


def _sorted_keys(requests):
    try:
        return sorted(requests)
    except TypeError:  # MessagePack and BSON keys need not be text, nor comparable
        return sorted(requests, key=repr)


@gen.coroutine
def run_batch(handler, requests):
    """Run the entries of ``requests`` on ``handler`` and answer them together.

    Resolves when the answer has been written; the handler then runs its
    after-hook and finishes.
    """
    handler.session = None
    handler._add_cors_headers()
    if not isinstance(requests, dict):
        handler._answer_refusal(bad_request('"batch" must be an object of method calls'))
        return
    keys = _sorted_keys(requests)
    handler.request_keys = keys
    handler.batch_results = {}
    handler._before_invoke(handler.transaction_id, '<batch>')
    if not keys:
        # 1.0.12 never answered an empty batch: the request hung.
        handler.respond(batch_results={}, allow_async=False)
    for key in keys:
        entry = requests[key]
        proxy = BatchHandlerProxy(handler, key)
        parameters = entry.get('parameters', {}) if isinstance(entry, dict) else {}
        outcome = handler._call(None, entry, parameters, proxy)
        if not isinstance(outcome, tuple):
            outcome = yield outcome
        result, error, asynchronous = outcome
        if asynchronous:
            setattr(proxy, 'async', True)  # noqa: B010 - a keyword on Python 3
        if result or error or not asynchronous:
            proxy.respond(result, error, allow_async=False)
    yield handler._answered()
