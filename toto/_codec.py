"""Turning call messages into bytes and back (private to toto).

Every toto connection and worker frames messages the same way:
``compress(dumps(obj))`` out and ``loads(decompress(data))`` in, with pickle
protocol 2 as the default serializer so Python 2 and Python 3 peers can read
each other::

    codec = MessageCodec(compression=zlib, serialization=json)
    data = codec.dumps({'method': 'a.b', 'parameters': {}})
    assert codec.loads(data) == {'method': 'a.b', 'parameters': {}}
"""

from __future__ import absolute_import, division, print_function

import importlib
import io

import six
from six.moves import cPickle as pickle

#: Pickle protocol for everything toto writes: the newest one Python 2 reads.
PICKLE_PROTOCOL = 2


def load_module(name_or_module):
    """Return a module given by dotted name, or the object itself.

    Options carry module names (``--worker_compression_module=zlib``) while
    constructors take module objects; both end up here.  Empty values mean
    "none".
    """
    if not name_or_module:
        return None
    if isinstance(name_or_module, six.string_types):
        return importlib.import_module(name_or_module)
    return name_or_module


if six.PY3:
    class _Python2Unpickler(pickle._Unpickler):
        """Pure-Python unpickler used when a Python 2 ``str`` is not UTF-8.

        Such strings stay ``bytes`` rather than failing the whole message;
        UTF-8 ones still become text.
        """

        def _decode_string(self, value):
            try:
                return value.decode('utf-8')
            except UnicodeDecodeError:
                return value

    def _pickle_loads(data):
        try:
            # The C unpickler handles the common case fast; Python 2 byte
            # strings come through as text when they are UTF-8.
            return pickle.loads(data, encoding='utf-8')
        except UnicodeDecodeError:
            return _Python2Unpickler(io.BytesIO(data)).load()
else:
    _pickle_loads = pickle.loads


def _pickle_dumps(obj):
    return pickle.dumps(obj, PICKLE_PROTOCOL)


class MessageCodec(object):
    """Serialize and compress messages with optional pluggable modules.

    ``serialization`` is anything with ``dumps``/``loads`` (default: pickle
    protocol 2) and ``compression`` anything with ``compress``/``decompress``
    (default: none).  A serializer that produces text, such as :mod:`json` on
    Python 3, is encoded as UTF-8 so the wire always carries bytes.

    ``max_size`` bounds what :meth:`loads` inflates a message to: with a
    compression module that has ``decompressobj()`` (:mod:`zlib`), inflating
    stops at ``max_size`` bytes and a larger message raises
    :exc:`ValueError`, so a small message cannot inflate to gigabytes.
    """

    def __init__(self, compression=None, serialization=None, max_size=None):
        self.compression = load_module(compression)
        self.serialization = load_module(serialization)
        for name in ('compress', 'decompress'):
            if self.compression is not None and not callable(
                    getattr(self.compression, name, None)):
                raise TypeError('compression %r has no %s() function'
                                % (self.compression, name))
        for name in ('dumps', 'loads'):
            if self.serialization is not None and not callable(
                    getattr(self.serialization, name, None)):
                raise TypeError('serialization %r has no %s() function'
                                % (self.serialization, name))
        if self.serialization is None:
            self._dumps = _pickle_dumps
            self._loads = _pickle_loads
        else:
            self._dumps = self.serialization.dumps
            self._loads = self._loads_any
        self._compress = self.compression.compress if self.compression else None
        self._decompress = self.compression.decompress if self.compression else None
        self.max_size = max_size if max_size and max_size > 0 else None
        if (self.max_size is not None and self.compression is not None and
                callable(getattr(self.compression, 'decompressobj', None))):
            self._decompress = self._bounded_decompress

    def _bounded_decompress(self, data):
        inflater = self.compression.decompressobj()
        # One byte over the limit is enough to know the message is too large.
        inflated = inflater.decompress(data, self.max_size + 1)
        if len(inflated) <= self.max_size and not inflater.unconsumed_tail:
            inflated += inflater.flush()
        if len(inflated) > self.max_size or inflater.unconsumed_tail:
            raise ValueError('the message inflates to more than %d bytes (max_message_size)'
                             % self.max_size)
        if not getattr(inflater, 'eof', True):
            # What zlib.decompress() says about a cut stream (Python 2 cannot tell).
            raise self.compression.error('incomplete or truncated stream')
        return inflated

    def _loads_any(self, data):
        try:
            return self.serialization.loads(data)
        except TypeError:
            # Some serializers accept only text on Python 3.
            if isinstance(data, bytes) and six.PY3:
                return self.serialization.loads(data.decode('utf-8'))
            raise

    def serialize(self, obj):
        """``obj`` as bytes, before compression."""
        data = self._dumps(obj)
        if isinstance(data, six.text_type):
            data = data.encode('utf-8')
        return data

    def deserialize(self, data):
        """The object in ``data``, once decompressed."""
        return self._loads(data)

    def compress(self, data):
        """``data`` compressed with the compression module, or as it is without one."""
        return data if self._compress is None else self._compress(data)

    def decompress(self, data):
        """``data`` inflated (within ``max_size``), or as it is without compression."""
        return data if self._decompress is None else self._decompress(data)

    def dumps(self, obj):
        """Return ``obj`` as the bytes that go on the wire."""
        data = self._dumps(obj)
        if isinstance(data, six.text_type):
            data = data.encode('utf-8')
        if self._compress is not None:
            data = self._compress(data)
        return data

    def dumps_call(self, method, parameters):
        """Return the wire bytes of a call, or raise TypeError saying why not.

        Anything the serializer refuses (an open file, a lambda, an object
        json does not know) is reported at the call site, before the call
        is queued.
        """
        try:
            return self.dumps({'method': method, 'parameters': parameters})
        except Exception as error:
            six.raise_from(TypeError('cannot serialize the parameters of %r: %s: %s'
                                     % (method, type(error).__name__, error)), error)

    def loads(self, data):
        """Return the object encoded in wire bytes ``data``."""
        if self._decompress is not None:
            data = self._decompress(data)
        return self._loads(data)
