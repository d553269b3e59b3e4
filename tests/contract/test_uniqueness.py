"""Unique indexes on scalar fields (check 3)."""

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tests.contract.servers import Doc


async def test_unique_index_rejects_second_insert(db: AsyncDatabase[Doc]) -> None:
    users = db["users"]
    await users.create_index("email", unique=True)
    await users.insert_one({"_id": 1, "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError) as raised:
        await users.insert_one({"_id": 2, "email": "a@example.com"})
    assert raised.value.code == 11000
    assert await users.find().to_list() == [{"_id": 1, "email": "a@example.com"}]


async def test_unique_index_unordered_insert_many_reports_duplicates_and_inserts_the_rest(
    db: AsyncDatabase[Doc],
) -> None:
    users = db["users"]
    await users.create_index("email", unique=True)
    await users.insert_one({"_id": 1, "email": "a"})
    batch: list[Doc] = [
        {"_id": 2, "email": "b"},
        {"_id": 3, "email": "a"},  # duplicates the stored document
        {"_id": 4, "email": "c"},
        {"_id": 5, "email": "b"},  # duplicates an earlier document of the same batch
    ]
    with pytest.raises(BulkWriteError) as raised:
        await users.insert_many(batch, ordered=False)
    assert [(e["index"], e["code"]) for e in raised.value.details["writeErrors"]] == [(1, 11000), (3, 11000)]
    assert await users.find().sort("_id", 1).to_list() == [
        {"_id": 1, "email": "a"},
        {"_id": 2, "email": "b"},
        {"_id": 4, "email": "c"},
    ]


async def test_unique_index_unordered_insert_many_counts_inserted(db: AsyncDatabase[Doc]) -> None:
    users = db["users"]
    await users.create_index("email", unique=True)
    await users.insert_one({"_id": 1, "email": "a"})
    with pytest.raises(BulkWriteError) as raised:
        await users.insert_many(
            [{"_id": 2, "email": "b"}, {"_id": 3, "email": "a"}, {"_id": 4, "email": "c"}], ordered=False
        )
    assert raised.value.details["nInserted"] == 2
