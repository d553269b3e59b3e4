"""Single-document atomicity under concurrency: what lets the store layer do without locks (checks 1 and 2)."""

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from tests.contract.servers import Doc


async def test_concurrent_inc_loses_no_increment(db: AsyncDatabase[Doc]) -> None:
    counters = db["counters"]
    await counters.insert_one({"_id": "c", "n": 0})
    results = await asyncio.gather(*(counters.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(250)))
    assert [r.modified_count for r in results] == [1] * 250
    assert await counters.find_one({"_id": "c"}) == {"_id": "c", "n": 250}


async def test_find_one_and_update_claim_has_exactly_one_winner(db: AsyncDatabase[Doc]) -> None:
    jobs = db["jobs"]
    await jobs.insert_one({"_id": "job", "state": "open"})
    results = await asyncio.gather(
        *(
            jobs.find_one_and_update({"_id": "job", "state": "open"}, {"$set": {"state": "taken", "by": n}})
            for n in range(100)
        )
    )
    winners = [n for n, before in enumerate(results) if before is not None]
    assert len(winners) == 1
    assert results[winners[0]] == {"_id": "job", "state": "open"}  # ReturnDocument.BEFORE is the default
    assert await jobs.find_one({"_id": "job"}) == {"_id": "job", "state": "taken", "by": winners[0]}


async def test_version_compare_and_set_has_exactly_one_winner(db: AsyncDatabase[Doc]) -> None:
    aggregates = db["aggregates"]
    await aggregates.insert_one({"_id": "a", "version": 7, "owner": None})
    results = await asyncio.gather(
        *(
            aggregates.update_one({"_id": "a", "version": 7}, {"$set": {"owner": n}, "$inc": {"version": 1}})
            for n in range(100)
        )
    )
    matched = [n for n, r in enumerate(results) if r.matched_count]
    assert len(matched) == 1
    assert sum(r.modified_count for r in results) == 1
    assert await aggregates.find_one({"_id": "a"}) == {"_id": "a", "version": 8, "owner": matched[0]}
