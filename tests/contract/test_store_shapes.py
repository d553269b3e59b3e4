"""Check 6: every query and update shape the store layer relies on, one small test each, asserting what MongoDB 7
returns. A shape a server gets wrong is recorded in conftest.KNOWN_FAILURES for that server, never weakened here.

| shape                                                                 | test                                         |
| --------------------------------------------------------------------- | -------------------------------------------- |
| insert_one, duplicate `_id` -> DuplicateKeyError                      | test_insert_one_duplicate_id                 |
| insert_many(ordered=False), duplicate `_id`s: BulkWriteError, rest in | test_insert_many_unordered_duplicate_ids     |
| ... and its nInserted counts only the documents inserted              | test_insert_many_unordered_counts_inserted   |
| find_one by `_id`, projection {"outbox": 0}                           | test_find_one_by_id_excluding_a_field        |
| find by `_id` $in                                                     | test_find_by_id_in                           |
| update_one {_id, version} $set + $inc (compare-and-set)               | test_version_compare_and_set                 |
| $set outbox.<uuid> subdocuments + $inc outbox_count                   | test_outbox_entries_set_with_count           |
| relay query outbox_count $gt 0, sort outbox_since, limit              | test_relay_query                             |
| relay query on outbox entries and outbox_since set by update_one      | test_relay_query_on_outbox_set_by_update     |
| clear: $exists on every entry, $unset them, $inc outbox_count -k      | test_outbox_clear_requires_every_entry       |
| two racing relays clear the same entries: one decrements              | test_outbox_clear_race_has_one_winner        |
| bulk_write of UpdateOne, ordered and unordered, one command           | test_bulk_write_update_ones                  |
| due queue: datetime $lte now, absent field never due, $unset leaves   | test_due_queue_on_absent_datetime            |
| $set of a top-level datetime (update_one, find_one_and_update upsert) | test_datetime_set_by_update_stays_a_datetime |
| due queue on deadlines written by $set                                | test_due_queue_on_deadlines_set_by_update    |
| due queue by an indexed status: equality, sort by datetime, limit     | test_due_queue_by_status_oldest_first        |
| due queue by presence: $exists true on a datetime, sort, limit        | test_due_queue_by_presence_oldest_first      |
| find_one_and_update upsert on `_id`, ReturnDocument.AFTER             | test_find_one_and_update_upsert_after        |
| update_one upsert on `_id` creates exactly one document               | test_update_one_upsert_creates_once          |
| concurrent update_one upserts on one `_id`: one document, no error    | test_concurrent_upserts_create_one_document  |
| replace_one upsert with `_id` in the replacement                      | test_replace_one_upsert_with_id              |
| bulk_write of ReplaceOne upserts "newer wins": stale -> only 11000    | test_bulk_replace_upserts_newer_wins         |
| sparse unique index on a sometimes-absent scalar field                | test_sparse_unique_index                     |
| compound index; enterprise's list by `_id` desc, `_id` $lt page       | test_compound_index_listing                  |
| $elemMatch (one field) on an array of subdocuments, no index          | test_elem_match_one_field                    |
| $elemMatch (two fields) must match within one element                 | test_elem_match_two_fields_same_element      |
| aggregate $match + $count                                             | test_aggregate_match_count                   |
| aggregate $match + $count when nothing matches: no document           | test_aggregate_count_of_nothing              |
| aggregate $group by a scalar field with $sum 1                        | test_aggregate_group_count                   |
| delete_many `_id` $in                                                 | test_delete_many_by_id_in                    |
| estimated_document_count                                              | test_estimated_document_count                |
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from tests.contract.servers import Doc, Server


def ms_now() -> datetime:
    """BSON dates hold milliseconds; pymongo hands back naive UTC datetimes."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def entry(seq: int) -> Doc:
    return {"seq": seq, "topic": "goglobal.referrals", "key": "r1", "payload": {"type": "offered", "n": seq}}


# --- insert --------------------------------------------------------------------------------------------


async def test_insert_one_duplicate_id(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_one({"_id": "r1", "v": 1})
    with pytest.raises(DuplicateKeyError) as raised:
        await referrals.insert_one({"_id": "r1", "v": 2})
    assert raised.value.code == 11000
    assert await referrals.find().to_list() == [{"_id": "r1", "v": 1}]


async def test_insert_many_unordered_duplicate_ids(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_one({"_id": "r1", "v": 1})
    batch: list[Doc] = [{"_id": "r2", "v": 2}, {"_id": "r1", "v": 9}, {"_id": "r3", "v": 3}, {"_id": "r2", "v": 9}]
    with pytest.raises(BulkWriteError) as raised:
        await referrals.insert_many(batch, ordered=False)
    details = raised.value.details
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000), (3, 11000)]
    assert await referrals.find().sort("_id", 1).to_list() == [
        {"_id": "r1", "v": 1},
        {"_id": "r2", "v": 2},
        {"_id": "r3", "v": 3},
    ]


async def test_insert_many_unordered_counts_inserted(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_one({"_id": "r1"})
    with pytest.raises(BulkWriteError) as raised:
        await referrals.insert_many([{"_id": "r2"}, {"_id": "r1"}, {"_id": "r3"}, {"_id": "r2"}], ordered=False)
    assert raised.value.details["nInserted"] == 2


# --- reads by _id --------------------------------------------------------------------------------------


async def test_find_one_by_id_excluding_a_field(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    key = str(uuid.uuid4())
    await referrals.insert_one(
        {"_id": "r1", "status": "open", "version": 3, "outbox": {key: entry(0)}, "outbox_count": 1}
    )
    await referrals.insert_one({"_id": "r2", "status": "closed", "version": 1})
    assert await referrals.find_one({"_id": "r1"}, {"outbox": 0}) == {
        "_id": "r1",
        "status": "open",
        "version": 3,
        "outbox_count": 1,
    }
    assert await referrals.find_one({"_id": "r2"}, {"outbox": 0}) == {"_id": "r2", "status": "closed", "version": 1}
    assert await referrals.find_one({"_id": "missing"}, {"outbox": 0}) is None


async def test_find_by_id_in(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_many([{"_id": f"r{i}", "n": i} for i in range(1, 6)])
    found = await referrals.find({"_id": {"$in": ["r4", "r2", "missing"]}}).to_list()
    assert sorted(found, key=lambda d: str(d["_id"])) == [{"_id": "r2", "n": 2}, {"_id": "r4", "n": 4}]
    assert await referrals.find({"_id": {"$in": []}}).to_list() == []


# --- compare-and-set and the embedded outbox -----------------------------------------------------------


async def test_version_compare_and_set(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_one({"_id": "r1", "version": 1, "status": "open"})
    moved = await referrals.update_one(
        {"_id": "r1", "version": 1}, {"$set": {"status": "offered"}, "$inc": {"version": 1}}
    )
    assert (moved.matched_count, moved.modified_count) == (1, 1)
    stale = await referrals.update_one(
        {"_id": "r1", "version": 1}, {"$set": {"status": "closed"}, "$inc": {"version": 1}}
    )
    assert (stale.matched_count, stale.modified_count) == (0, 0)
    assert stale.upserted_id is None
    assert await referrals.find_one({"_id": "r1"}) == {"_id": "r1", "version": 2, "status": "offered"}


async def test_outbox_entries_set_with_count(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_one({"_id": "r1", "version": 1, "status": "open", "outbox_count": 0})
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    result = await referrals.update_one(
        {"_id": "r1", "version": 1},
        {
            "$set": {"status": "offered", f"outbox.{first}": entry(0), f"outbox.{second}": entry(1)},
            "$inc": {"version": 1, "outbox_count": 2},
        },
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    result = await referrals.update_one(
        {"_id": "r1", "version": 2}, {"$set": {f"outbox.{third}": entry(2)}, "$inc": {"version": 1, "outbox_count": 1}}
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert await referrals.find_one({"_id": "r1"}) == {
        "_id": "r1",
        "version": 3,
        "status": "offered",
        "outbox_count": 3,
        "outbox": {first: entry(0), second: entry(1), third: entry(2)},
    }


async def test_relay_query(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.create_index("outbox_count")
    t0 = ms_now()
    await referrals.insert_many(
        [
            {"_id": "a", "outbox_count": 2, "outbox_since": t0 + timedelta(seconds=3)},
            {"_id": "b", "outbox_count": 0, "outbox_since": t0},
            {"_id": "c", "outbox_count": 1, "outbox_since": t0 + timedelta(seconds=1)},
            {"_id": "d", "status": "never had an outbox"},
            {"_id": "e", "outbox_count": 5, "outbox_since": t0 + timedelta(seconds=2)},
        ]
    )
    pending = referrals.find({"outbox_count": {"$gt": 0}}).sort("outbox_since", 1)
    assert [d["_id"] for d in await pending.limit(2).to_list()] == ["c", "e"]
    everything = await referrals.find({"outbox_count": {"$gt": 0}}).sort("outbox_since", 1).to_list()
    assert [d["_id"] for d in everything] == ["c", "e", "a"]


async def test_relay_query_on_outbox_set_by_update(db: AsyncDatabase[Doc]) -> None:
    """The writer sets outbox entries, `outbox_since` (a datetime) and the count in one update."""
    referrals = db["referrals"]
    await referrals.create_index("outbox_count")
    await referrals.insert_many([{"_id": name, "version": 1, "outbox_count": 0} for name in ("a", "b", "c", "d")])
    t0 = ms_now()
    for name, delay_s in (("a", 3), ("c", 1), ("d", 2)):
        result = await referrals.update_one(
            {"_id": name, "version": 1},
            {
                "$set": {f"outbox.{uuid.uuid4()}": entry(0), "outbox_since": t0 + timedelta(seconds=delay_s)},
                "$inc": {"version": 1, "outbox_count": 1},
            },
        )
        assert result.modified_count == 1
    pending = await referrals.find({"outbox_count": {"$gt": 0}}).sort("outbox_since", 1).limit(2).to_list()
    assert [(d["_id"], d["outbox_since"]) for d in pending] == [
        ("c", t0 + timedelta(seconds=1)),
        ("d", t0 + timedelta(seconds=2)),
    ]


def clear(entry_ids: list[str]) -> tuple[Doc, Doc]:
    query: Doc = {"_id": "r1", **{f"outbox.{e}": {"$exists": True} for e in entry_ids}}
    update: Doc = {"$unset": {f"outbox.{e}": "" for e in entry_ids}, "$inc": {"outbox_count": -len(entry_ids)}}
    return query, update


async def test_outbox_clear_requires_every_entry(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    one, two, three, never = (str(uuid.uuid4()) for _ in range(4))
    stored: Doc = {"_id": "r1", "outbox": {one: entry(0), two: entry(1), three: entry(2)}, "outbox_count": 3}
    await referrals.insert_one(stored)
    partly_gone = await referrals.update_one(*clear([one, never]))
    assert partly_gone.matched_count == 0
    assert await referrals.find_one({"_id": "r1"}) == stored
    cleared = await referrals.update_one(*clear([one, two]))
    assert (cleared.matched_count, cleared.modified_count) == (1, 1)
    assert await referrals.find_one({"_id": "r1"}) == {"_id": "r1", "outbox": {three: entry(2)}, "outbox_count": 1}
    again = await referrals.update_one(*clear([one, two]))
    assert again.matched_count == 0
    assert await referrals.find_one({"_id": "r1"}) == {"_id": "r1", "outbox": {three: entry(2)}, "outbox_count": 1}


async def test_outbox_clear_race_has_one_winner(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    await referrals.insert_one({"_id": "r1", "outbox": {one: entry(0), two: entry(1)}, "outbox_count": 2})
    results = await asyncio.gather(*(referrals.update_one(*clear([one, two])) for _ in range(20)))
    assert sorted(r.modified_count for r in results) == [0] * 19 + [1]
    assert sum(r.matched_count for r in results) == 1
    assert await referrals.find_one({"_id": "r1"}) == {"_id": "r1", "outbox": {}, "outbox_count": 0}


# --- bulk_write ----------------------------------------------------------------------------------------


class UpdateCommands(CommandListener):
    """Records the `update` commands a client sends, to see that a bulk_write is one command."""

    def __init__(self) -> None:
        self.commands: list[Doc] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.commands.append(dict(event.command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_bulk_write_update_ones(db: AsyncDatabase[Doc], server: Server, ordered: bool) -> None:
    await db["referrals"].insert_many([{"_id": "r1", "n": 0}, {"_id": "r2", "n": 0}, {"_id": "r3", "n": 0}])
    listener = UpdateCommands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(server.uri, event_listeners=[listener])
    try:
        referrals = client[db.name]["referrals"]
        result = await referrals.bulk_write(
            [
                UpdateOne({"_id": "r1"}, {"$inc": {"n": 1}}),  # matched, modified
                UpdateOne({"_id": "missing"}, {"$inc": {"n": 1}}),  # not matched
                UpdateOne({"_id": "r2", "n": 0}, {"$set": {"n": 5}}),  # matched, modified
                UpdateOne({"_id": "r3"}, {"$set": {"n": 0}}),  # matched, not modified (same value)
            ],
            ordered=ordered,
        )
    finally:
        await client.close()
    assert len(listener.commands) == 1
    assert len(listener.commands[0]["updates"]) == 4  # type: ignore[arg-type]
    assert (result.matched_count, result.modified_count, result.upserted_count) == (3, 2, 0)
    assert await db["referrals"].find().sort("_id", 1).to_list() == [
        {"_id": "r1", "n": 1},
        {"_id": "r2", "n": 5},
        {"_id": "r3", "n": 0},
    ]


# --- due queue -----------------------------------------------------------------------------------------


async def test_due_queue_on_absent_datetime(db: AsyncDatabase[Doc]) -> None:
    timers = db["referrals"]
    await timers.create_index("next_deadline")
    now = ms_now()
    await timers.insert_many(
        [
            {"_id": "late", "next_deadline": now - timedelta(seconds=10)},
            {"_id": "due", "next_deadline": now - timedelta(seconds=5)},
            {"_id": "exactly", "next_deadline": now},
            {"_id": "later", "next_deadline": now + timedelta(minutes=1)},
            {"_id": "idle", "status": "nothing due"},  # the field is absent, not null
        ]
    )
    due = await timers.find({"next_deadline": {"$lte": now}}).sort("next_deadline", 1).to_list()
    assert [d["_id"] for d in due] == ["late", "due", "exactly"]
    done = await timers.update_one({"_id": "late"}, {"$unset": {"next_deadline": ""}})
    assert (done.matched_count, done.modified_count) == (1, 1)
    assert await timers.find_one({"_id": "late"}) == {"_id": "late"}
    due = await timers.find({"next_deadline": {"$lte": now}}).sort("next_deadline", 1).to_list()
    assert [d["_id"] for d in due] == ["due", "exactly"]
    assert await timers.find({"next_deadline": {"$lte": now + timedelta(days=1)}}).sort("_id", 1).to_list() == [
        {"_id": "due", "next_deadline": now - timedelta(seconds=5)},
        {"_id": "exactly", "next_deadline": now},
        {"_id": "later", "next_deadline": now + timedelta(minutes=1)},
    ]


async def test_datetime_set_by_update_stays_a_datetime(db: AsyncDatabase[Doc]) -> None:
    timers = db["referrals"]
    when = ms_now()
    await timers.insert_many([{"_id": "a", "n": 0}, {"_id": "b", "n": 0}])
    await timers.update_one({"_id": "a"}, {"$set": {"next_deadline": when}})
    await timers.update_one({"_id": "b"}, {"$set": {"next_deadline": when, "o.x": 1}, "$inc": {"n": 1}})
    upserted = await timers.find_one_and_update(
        {"_id": "c"}, {"$set": {"next_deadline": when}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert upserted == {"_id": "c", "next_deadline": when}
    assert await timers.find().sort("_id", 1).to_list() == [
        {"_id": "a", "n": 0, "next_deadline": when},
        {"_id": "b", "n": 1, "next_deadline": when, "o": {"x": 1}},
        {"_id": "c", "next_deadline": when},
    ]


async def test_due_queue_on_deadlines_set_by_update(db: AsyncDatabase[Doc]) -> None:
    timers = db["referrals"]
    await timers.create_index("next_deadline")
    now = ms_now()
    await timers.insert_many(
        [
            {"_id": "inserted", "next_deadline": now - timedelta(seconds=10)},
            {"_id": "set-late"},
            {"_id": "set-later"},
            {"_id": "idle"},
        ]
    )
    await timers.update_one({"_id": "set-late"}, {"$set": {"next_deadline": now - timedelta(seconds=5)}})
    await timers.update_one({"_id": "set-later"}, {"$set": {"next_deadline": now + timedelta(minutes=1)}})
    due = await timers.find({"next_deadline": {"$lte": now}}).sort("next_deadline", 1).to_list()
    assert due == [
        {"_id": "inserted", "next_deadline": now - timedelta(seconds=10)},
        {"_id": "set-late", "next_deadline": now - timedelta(seconds=5)},
    ]


async def test_due_queue_by_status_oldest_first(db: AsyncDatabase[Doc]) -> None:
    """Notifications' due deliveries: the pending ones by an equality on an indexed status, earliest first (the
    caller keeps the prefix that is due); delivered ones, however old their time, never come."""
    deliveries = db["deliveries"]
    await deliveries.create_index([("status", 1), ("next_attempt_at", 1)])
    await deliveries.create_index("status")
    now = ms_now()
    await deliveries.insert_many(
        [
            {"_id": "later", "status": "pending", "next_attempt_at": now + timedelta(minutes=5)},
            {"_id": "done", "status": "delivered", "next_attempt_at": now - timedelta(hours=1)},
            {"_id": "due", "status": "pending", "next_attempt_at": now - timedelta(seconds=5)},
            {"_id": "late", "status": "pending", "next_attempt_at": now - timedelta(seconds=30)},
        ]
    )
    pending = await deliveries.find({"status": "pending"}).sort("next_attempt_at", 1).limit(2).to_list()
    assert [(d["_id"], d["next_attempt_at"]) for d in pending] == [
        ("late", now - timedelta(seconds=30)),
        ("due", now - timedelta(seconds=5)),
    ]


async def test_due_queue_by_presence_oldest_first(db: AsyncDatabase[Doc]) -> None:
    """Matching's expiring offers: plans that have a deadline (the field is absent otherwise, $unset when the
    offer closes), earliest first, the deadline projected."""
    plans = db["plans"]
    await plans.create_index("next_deadline")
    now = ms_now()
    await plans.insert_many(
        [
            {"_id": "tomorrow", "next_deadline": now + timedelta(days=1)},
            {"_id": "no-offer", "status": "matched"},
            {"_id": "expired", "next_deadline": now - timedelta(minutes=1)},
            {"_id": "closed", "next_deadline": now - timedelta(hours=1)},
        ]
    )
    await plans.update_one({"_id": "closed"}, {"$unset": {"next_deadline": ""}})
    query = plans.find({"next_deadline": {"$exists": True}}, projection={"next_deadline": 1})
    assert await query.sort("next_deadline", 1).limit(5).to_list() == [
        {"_id": "expired", "next_deadline": now - timedelta(minutes=1)},
        {"_id": "tomorrow", "next_deadline": now + timedelta(days=1)},
    ]


# --- upserts -------------------------------------------------------------------------------------------


async def test_find_one_and_update_upsert_after(db: AsyncDatabase[Doc]) -> None:
    keys = db["idempotency"]
    update: Doc = {"$set": {"status": "open"}, "$inc": {"hits": 1}}
    created = await keys.find_one_and_update({"_id": "k1"}, update, upsert=True, return_document=ReturnDocument.AFTER)
    assert created == {"_id": "k1", "status": "open", "hits": 1}
    again = await keys.find_one_and_update({"_id": "k1"}, update, upsert=True, return_document=ReturnDocument.AFTER)
    assert again == {"_id": "k1", "status": "open", "hits": 2}
    assert await keys.find().to_list() == [{"_id": "k1", "status": "open", "hits": 2}]


async def test_update_one_upsert_creates_once(db: AsyncDatabase[Doc]) -> None:
    views = db["views"]
    first = await views.update_one({"_id": "v1"}, {"$set": {"n": 1}}, upsert=True)
    assert (first.matched_count, first.modified_count, first.upserted_id) == (0, 0, "v1")
    second = await views.update_one({"_id": "v1"}, {"$set": {"n": 2}}, upsert=True)
    assert (second.matched_count, second.modified_count, second.upserted_id) == (1, 1, None)
    assert await views.find().to_list() == [{"_id": "v1", "n": 2}]


async def test_concurrent_upserts_create_one_document(db: AsyncDatabase[Doc]) -> None:
    """MongoDB (4.2+) retries an upsert that lost the race on the `_id` index: every call succeeds."""
    views = db["views"]
    results = await asyncio.gather(
        *(views.update_one({"_id": "v1"}, {"$set": {"by": n}}, upsert=True) for n in range(20))
    )
    assert [r.upserted_id for r in results].count("v1") == 1
    assert sum(r.matched_count for r in results) == 19
    stored = await views.find().to_list()
    assert len(stored) == 1 and stored[0]["_id"] == "v1"


async def test_replace_one_upsert_with_id(db: AsyncDatabase[Doc]) -> None:
    endpoints = db["endpoints"]
    first = await endpoints.replace_one({"_id": "p1"}, {"_id": "p1", "url": "https://a"}, upsert=True)
    assert (first.matched_count, first.upserted_id) == (0, "p1")
    second = await endpoints.replace_one({"_id": "p1"}, {"_id": "p1", "url": "https://b"}, upsert=True)
    assert (second.matched_count, second.modified_count, second.upserted_id) == (1, 1, None)
    assert await endpoints.find().to_list() == [{"_id": "p1", "url": "https://b"}]


async def test_bulk_replace_upserts_newer_wins(db: AsyncDatabase[Doc]) -> None:
    """Intake's delivery projection: each replacement applies only over a state with no more attempts; a stale one
    misses the filter, its upsert finds the `_id` taken, and that duplicate-key error is the only one reported."""
    deliveries = db["deliveries"]
    await deliveries.insert_many([{"_id": "d1", "attempts": 3}, {"_id": "d2", "attempts": 1}])

    def newer(delivery_id: str, attempts: int) -> ReplaceOne[Doc]:
        filter_ = {"_id": delivery_id, "attempts": {"$lte": attempts}}
        return ReplaceOne(filter_, {"_id": delivery_id, "attempts": attempts}, upsert=True)

    with pytest.raises(BulkWriteError) as raised:
        await deliveries.bulk_write([newer("d1", 2), newer("d2", 2), newer("d3", 1)], ordered=False)
    errors = raised.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, 11000)]
    stored = await deliveries.find().sort("_id", 1).to_list()
    assert stored == [{"_id": "d1", "attempts": 3}, {"_id": "d2", "attempts": 2}, {"_id": "d3", "attempts": 1}]


# --- indexes -------------------------------------------------------------------------------------------


async def test_sparse_unique_index(db: AsyncDatabase[Doc]) -> None:
    requests = db["requests"]
    await requests.create_index("idempotency_key_id", unique=True, sparse=True)
    await requests.insert_one({"_id": 1})
    await requests.insert_one({"_id": 2})  # a second document without the field is fine
    await requests.insert_one({"_id": 3, "idempotency_key_id": "k"})
    with pytest.raises(DuplicateKeyError) as raised:
        await requests.insert_one({"_id": 4, "idempotency_key_id": "k"})
    assert raised.value.code == 11000
    await requests.insert_one({"_id": 5, "idempotency_key_id": "k2"})
    assert [d["_id"] for d in await requests.find().sort("_id", 1).to_list()] == [1, 2, 3, 5]
    assert await requests.find({"idempotency_key_id": "k"}).to_list() == [{"_id": 3, "idempotency_key_id": "k"}]


async def test_compound_index_listing(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.create_index([("enterprise_id", 1), ("created_at", -1)])
    t0 = ms_now()
    docs: list[Doc] = [
        {"_id": f"r{i:02d}", "enterprise_id": "e1" if i % 3 else "e2", "created_at": t0 + timedelta(seconds=i)}
        for i in range(1, 13)
    ]
    await referrals.insert_many(docs)
    # e1 owns r01 r02 r04 r05 r07 r08 r10 r11; e2 owns r03 r06 r09 r12
    newest = await referrals.find({"enterprise_id": "e1"}).sort("_id", -1).limit(3).to_list()
    assert [d["_id"] for d in newest] == ["r11", "r10", "r08"]
    page = await referrals.find({"enterprise_id": "e1", "_id": {"$lt": "r08"}}).sort("_id", -1).limit(3).to_list()
    assert [d["_id"] for d in page] == ["r07", "r05", "r04"]
    before = await referrals.find({"enterprise_id": "e1", "_id": {"$lt": "r05"}}).to_list()
    assert sorted(str(d["_id"]) for d in before) == ["r01", "r02", "r04"]
    assert newest[0] == {"_id": "r11", "enterprise_id": "e1", "created_at": t0 + timedelta(seconds=11)}


# --- queries on arrays of subdocuments (no index) ------------------------------------------------------


REFERRAL_SETS: list[Doc] = [
    {"_id": "a", "referrals": [{"partner_id": "p1", "status": "offered"}]},
    {"_id": "b", "referrals": [{"partner_id": "p1", "status": "declined"}, {"partner_id": "p2", "status": "offered"}]},
    {"_id": "c", "referrals": [{"partner_id": "p1", "status": "declined"}]},
    {"_id": "d", "referrals": []},
    {"_id": "e"},
    {"_id": "f", "referrals": [{"partner_id": "p3", "status": "accepted"}, {"partner_id": "p1"}]},
]


async def test_elem_match_one_field(db: AsyncDatabase[Doc]) -> None:
    enterprises = db["enterprises"]
    await enterprises.insert_many([dict(d) for d in REFERRAL_SETS])
    found = await enterprises.find({"referrals": {"$elemMatch": {"status": "offered"}}}).to_list()
    assert sorted(str(d["_id"]) for d in found) == ["a", "b"]
    assert next(d for d in found if d["_id"] == "b") == REFERRAL_SETS[1]


async def test_elem_match_two_fields_same_element(db: AsyncDatabase[Doc]) -> None:
    enterprises = db["enterprises"]
    await enterprises.insert_many([dict(d) for d in REFERRAL_SETS])
    found = await enterprises.find({"referrals": {"$elemMatch": {"partner_id": "p1", "status": "offered"}}}).to_list()
    assert [d["_id"] for d in found] == ["a"]  # b has p1 and "offered", but in different elements


# --- aggregation ---------------------------------------------------------------------------------------


STATUSES: list[Doc] = [
    {"_id": 1, "status": "open", "enterprise_id": "e1"},
    {"_id": 2, "status": "closed", "enterprise_id": "e1"},
    {"_id": 3, "status": "open", "enterprise_id": "e2"},
    {"_id": 4, "status": "open", "enterprise_id": "e1"},
    {"_id": 5, "status": "closed", "enterprise_id": "e2"},
]


async def test_aggregate_match_count(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_many([dict(d) for d in STATUSES])
    counted = await (await referrals.aggregate([{"$match": {"status": "open"}}, {"$count": "n"}])).to_list()
    assert counted == [{"n": 3}]
    both = await (
        await referrals.aggregate([{"$match": {"status": "open", "enterprise_id": "e1"}}, {"$count": "n"}])
    ).to_list()
    assert both == [{"n": 2}]


async def test_aggregate_count_of_nothing(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_many([dict(d) for d in STATUSES])
    none = await (await referrals.aggregate([{"$match": {"status": "gone"}}, {"$count": "n"}])).to_list()
    assert none == []  # $count emits no document at all when nothing reaches it, not {"n": 0}


async def test_aggregate_group_count(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_many([dict(d) for d in STATUSES])
    groups = await (await referrals.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])).to_list()
    assert sorted(groups, key=lambda g: str(g["_id"])) == [{"_id": "closed", "n": 2}, {"_id": "open", "n": 3}]


# --- deletes and counts --------------------------------------------------------------------------------


async def test_delete_many_by_id_in(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    await referrals.insert_many([{"_id": f"r{i}"} for i in range(1, 6)])
    result = await referrals.delete_many({"_id": {"$in": ["r1", "r3", "missing"]}})
    assert result.deleted_count == 2
    assert await referrals.find().sort("_id", 1).to_list() == [{"_id": "r2"}, {"_id": "r4"}, {"_id": "r5"}]


async def test_estimated_document_count(db: AsyncDatabase[Doc]) -> None:
    referrals = db["referrals"]
    assert await referrals.estimated_document_count() == 0  # the collection does not exist yet
    await referrals.insert_many([{"_id": i} for i in range(7)])
    assert await referrals.estimated_document_count() == 7
    await referrals.delete_many({"_id": {"$in": [0, 1]}})
    assert await referrals.estimated_document_count() == 5


# -- what the store layer writes with (goglobal_shared.store) ------------------------------------------------------


async def test_compare_and_set_replacement_keeps_every_type(db: AsyncDatabase[Doc]) -> None:
    """`Aggregates.save` / `replace_versioned`: a whole-document replacement on `{_id, version}`; dates, nested
    documents with dates and lists of them come back as written, and a stale version matches nothing."""
    docs = db["aggregates"]
    when = ms_now()
    await docs.insert_one({"_id": "a", "version": 1, "at": when})
    changed = {
        "_id": "a",
        "version": 2,
        "at": when,
        "deadline": when + timedelta(hours=1),
        "history": [{"at": when, "why": "x"}],
        "outbox": {str(uuid.uuid4()): {"time": when, "seq": 2000}},
        "outbox_count": 1,
    }
    assert (await docs.replace_one({"_id": "a", "version": 1}, changed)).matched_count == 1
    assert (await docs.replace_one({"_id": "a", "version": 1}, {**changed, "version": 3})).matched_count == 0
    assert await docs.find_one({"_id": "a"}) == changed


async def test_push_of_a_document_with_a_date_keeps_it(db: AsyncDatabase[Doc]) -> None:
    """The store appends to lists in memory and replaces the document (`Change.push`), because of this shape."""
    letters = db["dead_letters"]
    when = ms_now()
    await letters.insert_one({"_id": "l", "replays": []})
    await letters.update_one({"_id": "l"}, {"$push": {"replays": {"at": when, "by": "operator:x"}}})
    assert await letters.find_one({"_id": "l"}) == {"_id": "l", "replays": [{"at": when, "by": "operator:x"}]}


async def test_a_document_holding_bytes_can_be_changed(db: AsyncDatabase[Doc]) -> None:
    """Dead letters keep a record's raw bytes; replacing such a document (or `$set` on it) must keep them."""
    letters = db["dead_letters"]
    await letters.insert_one({"_id": "b", "value": b"\x00\xffraw", "status": "open", "version": 1})
    await letters.replace_one({"_id": "b", "version": 1}, {"_id": "b", "value": b"\x00\xffraw", "status": "replayed"})
    assert await letters.find_one({"_id": "b"}) == {"_id": "b", "value": b"\x00\xffraw", "status": "replayed"}


async def test_set_of_a_whole_list_on_a_document_holding_bytes(db: AsyncDatabase[Doc]) -> None:
    """What dead letters do instead: `$set` of the whole list, with a compare-and-set on the version."""
    letters = db["dead_letters"]
    when = ms_now()
    await letters.insert_one({"_id": "c", "value": b"\x01", "replays": [], "version": 1})
    replays = [{"at": when, "by": "operator:x"}]
    written = await letters.update_one(
        {"_id": "c", "version": 1}, {"$set": {"replays": replays, "status": "replayed", "version": 2}}
    )
    assert written.matched_count == 1
    assert await letters.find_one({"_id": "c"}) == {
        "_id": "c",
        "value": b"\x01",
        "replays": replays,
        "version": 2,
        "status": "replayed",
    }
