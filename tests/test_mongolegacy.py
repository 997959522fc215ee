"""toto._mongolegacy: pymongo 2's collection methods, against SecantusDB (not mongod).

Every Python runs the scenarios on LegacyDatabase. Where pymongo 3.13 is installed (Python
2.7), the same scenarios also run on pymongo 3.13's own deprecated methods, in a second
database, and must store the same documents and return the same values.
"""

from __future__ import absolute_import, division, print_function

import warnings

import pytest

from mongosupport import CLIENT_TIMEOUTS, require_pymongo
from mongosupport import database_name_fixture  # noqa: F401

pymongo = require_pymongo()

from bson.objectid import ObjectId  # noqa: E402
from pymongo.collection import Collection  # noqa: E402
from pymongo.cursor import Cursor  # noqa: E402
from pymongo.database import Database  # noqa: E402
from pymongo.errors import DuplicateKeyError, InvalidOperation, WriteError  # noqa: E402

from toto._mongolegacy import LegacyCollection, LegacyCursor, LegacyDatabase  # noqa: E402

PYMONGO_3 = pymongo.version_tuple[0] == 3


@pytest.fixture
def client(mongodb_server):
    client = pymongo.MongoClient('127.0.0.1', mongodb_server.port, **CLIENT_TIMEOUTS)
    yield client
    client.close()


@pytest.fixture
def legacy_db(client, database_name):
    return LegacyDatabase(client, database_name)


@pytest.fixture
def native_db(client, database_name):
    """pymongo 3.13's own Database, on a database of its own (dropped afterwards)."""
    if not PYMONGO_3:
        pytest.skip('pymongo %s has no legacy methods to compare with' % pymongo.version)
    name = database_name + '_native'
    yield Database(client, name)
    client.drop_database(name)


def ids(*numbers):
    # Fixed ids, so both databases store the same documents.
    return [ObjectId('%024x' % number) for number in numbers]


FIXED_IDS = frozenset(ids(*range(100)))


# -- scenarios: each returns what the calls returned, in order --------------------------------

def scenario_insert(db):
    one, two, three = ids(1, 2, 3)
    results = [db.logs.insert({'_id': one, 'n': 1}),
               db.logs.insert([{'_id': two, 'n': 2}, {'_id': three, 'n': 3}])]
    document = {'n': 4}
    generated = db.logs.insert(document)
    results.append(isinstance(generated, ObjectId) and document['_id'] == generated)
    results.append(raised(db.logs.insert, {'_id': one}))
    results.append(raised(db.logs.insert, []))
    return results


def scenario_update(db):
    one, two = ids(1, 2)
    db.users.insert([{'_id': one, 'name': 'a', 'n': 1}, {'_id': two, 'name': 'b', 'n': 1}])
    return [
        db.users.update({'_id': one}, {'$set': {'n': 2}}),
        db.users.update({'n': {'$gte': 1}}, {'$inc': {'n': 10}}, multi=True),
        db.users.update({'n': 11}, {'$inc': {'n': 1}}),               # one of them only
        db.users.update({'_id': two}, {'name': 'replaced'}),          # replacement
        db.users.update({'_id': ids(3)[0]}, {'name': 'new'}, upsert=True),
        db.users.update({'_id': ids(4)[0]}, {'$set': {'x': 1}}, upsert=True),
        db.users.update({'_id': 'none'}, {'$set': {'x': 1}}),
        raised(db.users.update, {}, {'name': 'all'}, multi=True),
        raised(db.users.update, 'not a spec', {'$set': {'x': 1}}),
    ]


def scenario_remove(db):
    db.items.insert([{'_id': number, 'kind': number % 2} for number in range(6)])
    return [db.items.remove(0), db.items.remove({'kind': 1}, multi=False),
            db.items.remove({'kind': 1}), db.items.remove()]


def scenario_save(db):
    document = {'_id': ids(1)[0], 'v': 1}
    results = [db.things.save(document)]
    document['v'] = 2
    results.append(db.things.save(document))
    new = {'v': 3}
    results.append(db.things.save(new) == new['_id'])
    return results


def scenario_find_and_modify(db):
    db.jobs.insert([{'_id': number, 'state': 'new', 'rank': number} for number in range(3)])
    return [
        db.jobs.find_and_modify({'state': 'new'}, {'$set': {'state': 'taken'}},
                                sort=[('rank', -1)]),
        db.jobs.find_and_modify({'state': 'new'}, {'$set': {'state': 'taken'}}, new=True,
                                fields=['state'], sort=[('rank', 1)]),
        db.jobs.find_and_modify({'_id': 10}, {'$set': {'state': 'made'}}, upsert=True,
                                new=True),
        db.jobs.find_and_modify({'_id': 2}, remove=True),
        db.jobs.find_and_modify({'_id': 99}, {'$set': {'state': 'x'}}),
        sorted(db.jobs.find_and_modify({'_id': 1}, {'$set': {'v': 1}},
                                       full_response=True)),
        raised(db.jobs.find_and_modify, {'_id': 1}),
    ]


def scenario_indexes_and_counts(db):
    db.events.insert([{'_id': number, 'kind': number % 3} for number in range(10)])
    cursor = db.events.find({'kind': 0}).skip(1).limit(2)
    return [
        db.events.ensure_index('kind'),
        db.events.ensure_index('kind'),                    # cached: not sent again
        db.events.ensure_index([('kind', 1), ('_id', -1)], name='both', unique=True),
        sorted(db.events.index_information()),
        db.events.count(),
        db.events.count({'kind': 1}),
        db.events.count({'kind': 1}, limit=2, skip=1),
        cursor.count(),
        cursor.count(with_limit_and_skip=True),
        db.events.find().count(),
    ]


def scenario_find(db, spec_keyword, fields_keyword):
    db.people.insert([{'_id': number, 'name': 'p%d' % number, 'age': 20 + number}
                      for number in range(4)])
    found = db.people.find(**{spec_keyword: {'age': {'$gt': 21}},
                              fields_keyword: ['name']}).sort('_id', 1)
    return [list(found),
            db.people.find_one(1),
            db.people.find_one({'_id': 2}, {'age': 1}),
            db.people.find_one({'_id': 42}),
            sorted(db.collection_names()),
            sorted(db.collection_names(include_system_collections=False))]


SCENARIOS = [scenario_insert, scenario_update, scenario_remove, scenario_save,
             scenario_find_and_modify, scenario_indexes_and_counts]


def raised(call, *args, **kwargs):
    """The exception class a call raises, for comparing failures (None if it does not)."""
    try:
        call(*args, **kwargs)
    except Exception as error:
        return type(error)
    return None


def contents(db):
    # Every stored document; ids the driver generated read 'generated' (they differ by run).
    def comparable(document):
        if isinstance(document['_id'], ObjectId) and document['_id'] not in FIXED_IDS:
            document['_id'] = 'generated'
        return document
    return dict((name, sorted((comparable(document) for document in db[name].find()),
                              key=lambda document: str(sorted(document.items()))))
                for name in db.list_collection_names())


# -- tests -------------------------------------------------------------------------------

@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_scenario_on_pymongo_3_13_and_on_the_legacy_layer_agree(scenario, native_db,
                                                                  legacy_db):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        expected = scenario(native_db)
    assert scenario(legacy_db) == expected
    assert contents(legacy_db) == contents(native_db)


def test_find_with_pymongo_2_keywords_matches_pymongo_3_13_with_the_new_ones(native_db,
                                                                             legacy_db):
    # pymongo 3.13 itself no longer takes spec= and fields=.
    with pytest.raises(TypeError):
        native_db.people.find(spec={})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        expected = scenario_find(native_db, 'filter', 'projection')
    assert scenario_find(legacy_db, 'spec', 'fields') == expected


def test_insert_returns_ids_and_adds_them(legacy_db):
    assert scenario_insert(legacy_db) == [
        ids(1)[0], ids(2, 3), True, DuplicateKeyError, InvalidOperation]
    # Unacknowledged writes: the id as pymongo 3.13 gave it, and no answer for the others.
    assert legacy_db.logs.insert({'_id': 9}, w=0) == 9
    assert legacy_db.logs.update({'_id': 9}, {'$set': {'n': 1}}, w=0) is None
    assert legacy_db.logs.remove({'_id': 9}, w=0) is None


def test_update_answers_as_the_server_did(legacy_db):
    results = scenario_update(legacy_db)
    assert [result['n'] for result in results[:7]] == [1, 2, 1, 1, 1, 1, 0]
    assert results[1]['updatedExisting'] is True and results[6]['updatedExisting'] is False
    assert results[4]['upserted'] == ids(3)[0] and results[5]['upserted'] == ids(4)[0]
    assert results[7:] == [WriteError, TypeError]
    assert legacy_db.users.find_one(ids(2)[0]) == {'_id': ids(2)[0], 'name': 'replaced'}
    assert legacy_db.users.find_one(ids(1)[0])['n'] in (12, 13)


def test_remove_save_and_find_and_modify(legacy_db):
    assert [result['n'] for result in scenario_remove(legacy_db)] == [1, 1, 2, 2]
    assert legacy_db.items.count() == 0
    assert scenario_save(legacy_db) == [ids(1)[0], ids(1)[0], True]
    assert legacy_db.things.find_one(ids(1)[0])['v'] == 2
    results = scenario_find_and_modify(legacy_db)
    assert results[0] == {'_id': 2, 'state': 'new', 'rank': 2}
    assert results[1] == {'_id': 0, 'state': 'taken'}
    assert results[2] == {'_id': 10, 'state': 'made'}
    assert results[3]['_id'] == 2 and results[4] is None
    assert 'value' in results[5] and results[6] is ValueError


def test_indexes_counts_and_find(legacy_db):
    results = scenario_indexes_and_counts(legacy_db)
    assert results[:3] == ['kind_1', None, 'both']
    assert results[3] == ['_id_', 'both', 'kind_1']
    assert results[4:] == [10, 3, 2, 4, 2, 10]
    found = scenario_find(legacy_db, 'spec', 'fields')
    assert found[0] == [{'_id': 2, 'name': 'p2'}, {'_id': 3, 'name': 'p3'}]
    assert found[1:4] == [{'_id': 1, 'name': 'p1', 'age': 21}, {'_id': 2, 'age': 22}, None]
    assert found[4] == ['events', 'people'] or 'people' in found[4]


def test_the_layer_stays_a_real_pymongo_database(legacy_db):
    assert isinstance(legacy_db, Database)
    for collection in (legacy_db.logs, legacy_db['logs'], legacy_db.get_collection('logs'),
                       legacy_db.logs.archive, legacy_db.logs.with_options(),
                       legacy_db.with_options().logs):
        assert isinstance(collection, LegacyCollection) and isinstance(collection, Collection)
    assert legacy_db.logs.archive.name == 'logs.archive'
    cursor = legacy_db.logs.find()
    assert isinstance(cursor, LegacyCursor) and isinstance(cursor, Cursor)
    assert isinstance(cursor.clone(), LegacyCursor)
    assert legacy_db.logs.find_one(spec_or_id={'x': 1}) is None
    # The current API is still there, unchanged.
    assert legacy_db.logs.insert_one({'_id': 1}).inserted_id == 1
    assert legacy_db.logs.count_documents({}) == 1
