"""pymongo 2's collection methods on pymongo 3.13 and 4, for apps that use ``handler.db``.

Toto 1.0.12 gave apps a pymongo 2 ``Database``, and their methods call what pymongo 2 had:
``db.logs.insert(doc)``, ``db.users.update(spec, doc, upsert=True)``, ``db.x.remove(spec)``,
``db.x.find(spec=..., fields=...).count()``, ``db.collection_names()``... pymongo 4 removed
these. :class:`LegacyDatabase` is a real ``pymongo.database.Database`` whose collections are
:class:`LegacyCollection`, a real ``Collection`` that has them again, written with the current
API (so the same code runs on pymongo 3.13 under Python 2.7 and on pymongo 4)::

    from pymongo import MongoClient
    from toto._mongolegacy import LegacyDatabase

    db = LegacyDatabase(MongoClient('127.0.0.1', 27017), 'toto_server')
    object_id = db.logs.insert({'message': 'hello'})        # as pymongo 2
    db.logs.update({'_id': object_id}, {'$set': {'seen': True}})
    db.logs.find({'seen': True}).count()                    # 1

Results are those of pymongo 3.13's own deprecated methods: ``insert`` gives the id (a list
of ids for a list), ``update``/``remove`` the server's answer as a dict (None for ``w=0``),
``save`` the id, ``find_and_modify`` the document (or the whole answer). Writes are
acknowledged unless ``w=0`` is passed, as in pymongo 3.13 (pymongo 2's ``Connection`` did not
wait for them).
"""

from __future__ import absolute_import, division, print_function

import logging
import threading
import time

import six
from bson.objectid import ObjectId
from bson.son import SON
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.errors import (BulkWriteError, DuplicateKeyError, InvalidOperation,
                            OperationFailure, WriteError)
from pymongo.operations import IndexModel
from pymongo.write_concern import WriteConcern

try:
    from collections.abc import Mapping
except ImportError:  # Python 2
    from collections import Mapping

__all__ = ['LegacyCollection', 'LegacyCursor', 'LegacyDatabase']

logger = logging.getLogger('toto.mongolegacy')

# pymongo 2's find() keywords that have new names.
_RENAMED_FIND_KEYWORDS = {'spec': 'filter', 'fields': 'projection'}


class LegacyCursor(Cursor):
    """A ``Cursor`` with pymongo 2's ``count()``."""

    def count(self, with_limit_and_skip=False):
        """The number of documents the query matches (limit and skip only if asked)."""
        options = {}
        if with_limit_and_skip:
            skip = _cursor_attribute(self, 'skip')
            limit = _cursor_attribute(self, 'limit')
            if skip:
                options['skip'] = skip
            if limit:
                # A negative limit means "one batch of that size" but still that many.
                options['limit'] = abs(limit)
        hint = _cursor_attribute(self, 'hint')
        if hint is not None:
            options['hint'] = hint
        spec = _cursor_attribute(self, 'spec') or {}
        return self.collection.count_documents(spec, **options)


class LegacyCollection(Collection):
    """A ``Collection`` with pymongo 2's methods (see the module docstring)."""

    # -- staying a LegacyCollection -----------------------------------------------------

    def __getitem__(self, name):
        return LegacyCollection(self.database, '%s.%s' % (self.name, name), False,
                                self.codec_options, self.read_preference, self.write_concern,
                                self.read_concern)

    def with_options(self, codec_options=None, read_preference=None, write_concern=None,
                     read_concern=None):
        return LegacyCollection(self.database, self.name, False,
                                codec_options or self.codec_options,
                                read_preference or self.read_preference,
                                write_concern or self.write_concern,
                                read_concern or self.read_concern)

    # -- reads -----------------------------------------------------------------------

    def find(self, *args, **kwargs):
        """``find`` that also takes pymongo 2's ``spec``, ``fields`` and ``timeout``."""
        for old, new in _RENAMED_FIND_KEYWORDS.items():
            if old in kwargs:
                kwargs[new] = kwargs.pop(old)
        if 'timeout' in kwargs:
            kwargs['no_cursor_timeout'] = not kwargs.pop('timeout')
        # Gone in pymongo 3 and meaningless since MongoDB 4: dropped, not an error.
        for obsolete in ('snapshot', 'network_timeout', 'as_class', 'slave_okay', 'compile_re',
                         'secondary_acceptable_latency_ms', 'tag_sets', 'max_scan'):
            kwargs.pop(obsolete, None)
        return LegacyCursor(self, *args, **kwargs)

    def find_one(self, spec_or_id=None, *args, **kwargs):
        """``find_one`` that also takes pymongo 2's ``spec_or_id`` and ``fields``."""
        if 'filter' in kwargs:
            spec_or_id = kwargs.pop('filter')
        if spec_or_id is not None and not isinstance(spec_or_id, Mapping):
            spec_or_id = {'_id': spec_or_id}
        for document in self.find(spec_or_id, *args, **kwargs).limit(-1):
            return document
        return None

    def count(self, filter=None, **kwargs):
        """The number of documents matching ``filter`` (all without one).

        Takes ``skip``, ``limit`` (0: none), ``hint`` and ``maxTimeMS`` as pymongo 3.13 did.
        """
        if not kwargs.get('limit'):
            kwargs.pop('limit', None)
        if not kwargs.get('skip'):
            kwargs.pop('skip', None)
        return self.count_documents(filter or {}, **kwargs)

    # -- writes ----------------------------------------------------------------------

    def insert(self, doc_or_docs, manipulate=True, check_keys=True, continue_on_error=False,
               **kwargs):
        """Insert a document (returns its ``_id``) or a list of them (returns the ids).

        An ``_id`` is added to each document that has none, as pymongo 2 did.
        """
        collection = self._with_write_concern(kwargs)
        if isinstance(doc_or_docs, Mapping):
            if manipulate and '_id' not in doc_or_docs:
                doc_or_docs['_id'] = ObjectId()
            collection.insert_one(doc_or_docs)
            return doc_or_docs.get('_id')
        documents = list(doc_or_docs)
        if not documents:
            raise InvalidOperation('cannot do an empty bulk insert')
        if manipulate:
            for document in documents:
                if '_id' not in document:
                    document['_id'] = ObjectId()
        # Without manipulate pymongo 3.13 gave the ids the documents had before the insert.
        inserted_ids = [document.get('_id') for document in documents]
        try:
            collection.insert_many(documents, ordered=not continue_on_error)
        except BulkWriteError as error:
            _raise_last_write_error(error)
        return inserted_ids

    def update(self, spec, document, upsert=False, manipulate=False, multi=False,
               check_keys=True, **kwargs):
        """Update the documents ``spec`` matches with ``$`` operators, or replace one.

        Returns the server's answer (``n``, ``nModified``, ``updatedExisting``, ``upserted``)
        or None for an unacknowledged write.
        """
        _check_mapping('spec', spec)
        _check_mapping('document', document)
        collection = self._with_write_concern(kwargs)
        if document and next(iter(document)).startswith('$'):
            method = collection.update_many if multi else collection.update_one
            result = method(spec, document, upsert=upsert)
        elif multi:
            # The server refuses a replacement for many documents (pymongo 3.13 raised its
            # WriteError); pymongo 4 would not send it: the same error, made here.
            raise WriteError('multi update only works with $ operators', 9,
                             {'code': 9, 'errmsg': 'multi update only works with $ operators'})
        else:
            result = collection.replace_one(spec, document, upsert=upsert)
        return result.raw_result if result.acknowledged else None

    def remove(self, spec_or_id=None, multi=True, **kwargs):
        """Delete the documents ``spec_or_id`` matches (an id, a spec, or None for all).

        Returns the server's answer (``n``) or None for an unacknowledged write.
        """
        if spec_or_id is None:
            spec_or_id = {}
        if not isinstance(spec_or_id, Mapping):
            spec_or_id = {'_id': spec_or_id}
        collection = self._with_write_concern(kwargs)
        method = collection.delete_many if multi else collection.delete_one
        result = method(spec_or_id)
        return result.raw_result if result.acknowledged else None

    def save(self, to_save, manipulate=True, check_keys=True, **kwargs):
        """Insert ``to_save``, or replace the document with its ``_id``; returns the id."""
        _check_mapping('to_save', to_save)
        if '_id' not in to_save:
            return self.insert(to_save, manipulate, check_keys, **kwargs)
        collection = self._with_write_concern(kwargs)
        collection.replace_one({'_id': to_save['_id']}, to_save, upsert=True)
        return to_save.get('_id')

    def find_and_modify(self, query={}, update=None, upsert=False, sort=None,
                        full_response=False, manipulate=False, **kwargs):
        """pymongo 2's ``find_and_modify``: the ``findAndModify`` command as it sent it.

        ``remove=True`` deletes instead of updating; ``new=True`` returns the document after
        the change; ``fields`` picks fields. Returns the document (None when nothing matched)
        or, with ``full_response``, the server's whole answer.
        """
        if not update and not kwargs.get('remove'):
            raise ValueError('Must either update or remove')
        if update and kwargs.get('remove'):
            raise ValueError("Can't do both update and remove")
        command = SON([('findAndModify', self.name)])
        if query:
            command['query'] = query
        if update:
            command['update'] = update
        if upsert:
            command['upsert'] = upsert
        if sort:
            command['sort'] = _sort_document(sort)
        fields = kwargs.pop('fields', None)
        if fields is not None:
            command['fields'] = _fields_document(fields)
        command.update(kwargs)
        if not self.write_concern.is_server_default:
            command['writeConcern'] = self.write_concern.document
        answer = self.database.command(command)
        if full_response:
            return answer
        return answer.get('value')

    def ensure_index(self, key_or_list, cache_for=300, **kwargs):
        """Create the index unless this client did so in the last ``cache_for`` seconds.

        Returns the index name when it was sent to the server, else None (pymongo 2/3).
        """
        if not isinstance(cache_for, six.integer_types + (float,)):
            raise TypeError('cache_for must be an integer or float.')
        if 'drop_dups' in kwargs:
            kwargs['dropDups'] = kwargs.pop('drop_dups')
        if 'bucket_size' in kwargs:
            kwargs['bucketSize'] = kwargs.pop('bucket_size')
        index = IndexModel(key_or_list, **kwargs)
        name = index.document['name']
        cache = _index_cache(self.database.client)
        cache_key = (self.database.name, self.name, name)
        with cache.lock:
            if cache.entries.get(cache_key, 0) > time.time():
                return None
        self.create_indexes([index])
        with cache.lock:
            cache.entries[cache_key] = time.time() + cache_for
        return name

    # -- helpers -----------------------------------------------------------------------

    def _with_write_concern(self, options):
        # pymongo 2 and 3 took w=, j=, wtimeout=, fsync= on each write.
        if not options:
            return self
        return self.with_options(write_concern=WriteConcern(**options))


class LegacyDatabase(Database):
    """A ``Database`` whose collections are :class:`LegacyCollection` (module docstring)."""

    def __getitem__(self, name):
        return LegacyCollection(self, name)

    def get_collection(self, name, codec_options=None, read_preference=None,
                       write_concern=None, read_concern=None):
        return LegacyCollection(self, name, False, codec_options, read_preference,
                                write_concern, read_concern)

    def with_options(self, codec_options=None, read_preference=None, write_concern=None,
                     read_concern=None):
        return LegacyDatabase(self.client, self.name, codec_options or self.codec_options,
                              read_preference or self.read_preference,
                              write_concern or self.write_concern,
                              read_concern or self.read_concern)

    def collection_names(self, include_system_collections=True, session=None):
        """The names of the collections (``system.*`` ones only if asked)."""
        names = self.list_collection_names(session=session)
        if include_system_collections:
            return names
        return [name for name in names if not name.startswith('system.')]


class _IndexCache(object):
    # ensure_index's memory of recently created indexes, one per client as in pymongo 2/3.
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}


_index_caches_lock = threading.Lock()


def _index_cache(client):
    with _index_caches_lock:
        cache = getattr(client, '_toto_legacy_index_cache', None)
        if cache is None:
            cache = _IndexCache()
            # object.__setattr__: MongoClient has no __setattr__ of its own, but be explicit
            # that this is a private attribute on someone else's object.
            object.__setattr__(client, '_toto_legacy_index_cache', cache)
        return cache


def _cursor_attribute(cursor, name):
    # pymongo 4.9+ names the query's parts _spec, _skip...; 3.13 and 4.0-4.8 __spec, __skip...
    for attribute in ('_' + name, '_Cursor__' + name):
        if hasattr(cursor, attribute):
            return getattr(cursor, attribute)
    return None


def _check_mapping(name, value):
    if not isinstance(value, Mapping):
        raise TypeError('%s must be an instance of dict, bson.son.SON, or any other type '
                        'that inherits from collections.Mapping' % (name,))


def _sort_document(sort):
    # A list of (key, direction) pairs, or a mapping with one key, as pymongo 3.13 took.
    if isinstance(sort, list):
        return SON(sort)
    if isinstance(sort, Mapping) and (len(sort) == 1 or isinstance(sort, SON)):
        return sort
    raise TypeError('sort must be a list of (key, direction) pairs, a dict of len 1, or an '
                    'instance of SON or OrderedDict')


def _fields_document(fields):
    # pymongo 2 took a list of field names or a {name: 0/1} mapping.
    if isinstance(fields, Mapping):
        return fields
    if isinstance(fields, (list, tuple)):
        return dict((name, 1) for name in fields)
    raise TypeError('fields must be a list of key names, each an instance of %s'
                    % (six.string_types[0].__name__,))


def _raise_last_write_error(error):
    # pymongo 3.13's insert raised the last write error of the batch, not BulkWriteError.
    write_errors = error.details.get('writeErrors') or []
    if not write_errors:
        raise error
    last = write_errors[-1]
    code = last.get('code')
    message = last.get('errmsg', 'write failed')
    if code in (11000, 11001, 12582):
        raise DuplicateKeyError(message, code, last)
    raise OperationFailure(message, code, last)
