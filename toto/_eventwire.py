"""The event wire format: reading a received frame into an event, and refusing what is not one.

An event is one ZeroMQ frame, ``zlib.compress(pickle.dumps({'name': name,
'args': args}, 0))`` as Toto 1.0.12 sends it, or the zlib-compressed UTF-8
JSON of the same dict (``--event_serialization=json``, between processes of
this package).  :class:`EventReader` inflates a frame within a size limit
and parses it, letting a pickle name only plain data types and the globals
it was given::

    reader = EventReader('pickle', pickle_globals=(), max_size=16 << 20)
    event = reader.read(frame)          # raises Refused, or a parse error
    name, args = event['name'], event['args']
"""

from __future__ import absolute_import, division, print_function

import collections
import datetime
import decimal
import importlib
import io
import json
import uuid
import zlib

import six
from six.moves import cPickle as pickle

from toto._security import shortened

#: The pickle protocol of events, 1.0.12's (cPickle's default).
EVENT_PICKLE_PROTOCOL = 0


class EventReader(object):
    """Turns a received frame into an event: inflates it (bounded), then parses it.

    JSON is recognised by its first byte (a pickle never starts with ``{``)
    and always read; pickles are refused in ``json`` mode, and otherwise
    may name only the globals in ``_SAFE_GLOBALS`` and ``pickle_globals``.
    """

    def __init__(self, serialization, pickle_globals, max_size):
        self.serialization = serialization
        self.max_size = max_size
        names = set(split_names(pickle_globals))
        self._any_global = '*' in names
        self._allowed = set(_split_global(name) for name in names if name != '*')

    def read(self, frame):
        data = self._inflate(frame)
        if data[:1] == b'{':
            return json.loads(data.decode('utf-8'))
        if self.serialization == 'json':
            raise Refused('a pickled event, and event_serialization is json')
        return _pickle_loads(data, None if self._any_global else self._find_global)

    def _inflate(self, frame):
        limit = self.max_size
        if limit <= 0:
            return zlib.decompress(frame)
        if len(frame) > limit:
            raise Refused('a frame of %d bytes, over event_max_size=%d' % (len(frame), limit))
        inflater = zlib.decompressobj()
        # One byte over the limit is enough to know the event is too large.
        data = inflater.decompress(frame, limit + 1)
        if len(data) <= limit and not inflater.unconsumed_tail:
            data += inflater.flush()
        if len(data) > limit or inflater.unconsumed_tail:
            raise Refused('it inflates to more than event_max_size=%d bytes' % limit)
        if not getattr(inflater, 'eof', True):
            # What zlib.decompress() says (Python 2 cannot tell).
            raise zlib.error('incomplete or truncated stream')
        return data

    def _find_global(self, module, name):
        module = _PY3_MODULES.get(module, module)
        safe = _SAFE_GLOBALS.get((module, name))
        if safe is not None:
            return safe
        if (module, name) in self._allowed:
            return getattr(importlib.import_module(_PY2_MODULES.get(module, module)
                                                   if six.PY2 else module), name)
        raise Refused('the pickle names %s.%s, which is not allowed (see '
                       'event_pickle_globals)' % (shortened(module, 60), shortened(name, 60)))

class Refused(Exception):
    """A frame the listener will not read."""


if six.PY3:
    class _SafeUnpickler(pickle.Unpickler):
        def __init__(self, data, find_global):
            super(_SafeUnpickler, self).__init__(io.BytesIO(data), encoding='utf-8')
            self._find_global = find_global

        def find_class(self, module, name):
            if self._find_global is None:
                return super(_SafeUnpickler, self).find_class(module, name)
            return self._find_global(module, name)

    class _SafePython2Unpickler(pickle._Unpickler):  # type: ignore[name-defined]
        """Pure-Python unpickler for events holding a Python 2 ``str`` that is not UTF-8.

        Such strings arrive as ``bytes`` (as on the worker wire) instead of
        failing the whole event.
        """

        def __init__(self, data, find_global):
            super(_SafePython2Unpickler, self).__init__(io.BytesIO(data), encoding='utf-8')
            self._find_global = find_global

        def find_class(self, module, name):
            if self._find_global is None:
                return super(_SafePython2Unpickler, self).find_class(module, name)
            return self._find_global(module, name)

        def _decode_string(self, value):
            try:
                return value.decode('utf-8')
            except UnicodeDecodeError:
                return value

    def _pickle_loads(data, find_global):
        try:
            return _SafeUnpickler(data, find_global).load()
        except UnicodeDecodeError:
            return _SafePython2Unpickler(data, find_global).load()
else:
    def _pickle_loads(data, find_global):
        unpickler = pickle.Unpickler(io.BytesIO(data))
        if find_global is not None:
            unpickler.find_global = find_global
        return unpickler.load()

def _bytes_from(*args):
    # Python 3 pickles b'' as bytes(); a number would allocate that many bytes.
    if args and isinstance(args[0], six.integer_types):
        raise Refused('bytes(<number>) in a pickle')
    return six.binary_type(*args)

def _bytearray_from(*args):
    if args and isinstance(args[0], six.integer_types):
        raise Refused('bytearray(<number>) in a pickle')
    return bytearray(*args)

def _encode_text(text, encoding='utf-8', errors='strict'):
    # Python 3 pickles bytes as _codecs.encode(text, 'latin1') at protocol 0.
    if not isinstance(text, six.text_type):
        raise Refused('_codecs.encode of a %s in a pickle' % type(text).__name__)
    return text.encode(encoding, errors)

def _newobj(cls, *args):
    return cls.__new__(cls, *args)


# Module names as Python 3 spells them; pickles from Python 2 (and Python 3
# pickles at protocol 0-2) use the Python 2 names.
_PY3_MODULES = {'__builtin__': 'builtins', 'copy_reg': 'copyreg'}
_PY2_MODULES = dict((new, old) for old, new in _PY3_MODULES.items())

#: What a received pickle may name without --event_pickle_globals: plain data
#: types whose construction runs no code chosen by the sender and allocates
#: no more than the pickle spells out.

_SAFE_GLOBALS = {
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'complex'): complex,
    ('builtins', 'object'): object,
    ('builtins', 'bytes'): _bytes_from,
    ('builtins', 'bytearray'): _bytearray_from,
    ('_codecs', 'encode'): _encode_text,
    # Protocol 0 rebuilds objects with it; the classes it gets passed the check too.
    ('copyreg', '_reconstructor'): six.moves.copyreg._reconstructor,  # type: ignore[attr-defined]
    ('copyreg', '__newobj__'): _newobj,
    ('datetime', 'date'): datetime.date,
    ('datetime', 'time'): datetime.time,
    ('datetime', 'datetime'): datetime.datetime,
    ('datetime', 'timedelta'): datetime.timedelta,
    ('decimal', 'Decimal'): decimal.Decimal,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('collections', 'deque'): collections.deque,
    ('uuid', 'UUID'): uuid.UUID,
}
if six.PY3:
    _SAFE_GLOBALS[('datetime', 'timezone')] = datetime.timezone

def _split_global(name):
    module, _, attribute = name.strip().rpartition('.')
    if not module or not attribute:
        raise ValueError('event_pickle_globals entries are module.name, not %r' % (name,))
    return _PY3_MODULES.get(module, module), attribute

def split_names(value):
    """A list from an option that may be a list, a comma separated string or None."""
    if not value:
        return []
    if isinstance(value, six.string_types):
        value = [value]
    items = []
    for entry in value:
        items.extend(part.strip() for part in entry.split(',') if part.strip())
    return items
