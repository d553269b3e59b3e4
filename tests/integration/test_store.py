"""The store layer on the real database server: compare-and-set changes never lose each other, and a batch of
changes reports exactly the documents whose write lost a race."""

import asyncio
import uuid
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from goglobal_shared.mongo import Document
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import Change, replace_versioned
from tests.support import Namespace
from tests.unit.test_envelope import submitted


async def test_concurrent_changes_of_one_document_all_apply(namespace: Namespace) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        docs = Aggregates(mongo[namespace.database("store")]["counters"])
        await docs.ensure_indexes()
        assert await docs.insert({"_id": "c", "n": 0, "seen": []}, [])

        async def bump(n: int) -> None:
            async def decide(doc: Document) -> Change:
                return Change({"n": doc["n"] + 1, "at": datetime.now(UTC)}, [submitted("c")], push={"seen": n})

            await docs.change("c", decide)

        await asyncio.gather(*(bump(n) for n in range(40)))
        doc = await mongo[namespace.database("store")]["counters"].find_one({"_id": "c"})
        assert doc is not None
        assert doc["n"] == 40 and sorted(doc["seen"]) == list(range(40)) and doc["version"] == 41
        assert doc["outbox_count"] == 40 == len(doc["outbox"])  # every change's event, none lost
        assert isinstance(doc["at"], datetime)  # dates keep their type through every change
    finally:
        await mongo.close()


async def test_a_batch_reports_the_documents_whose_write_lost_a_race(namespace: Namespace) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(namespace.infra.mongodb_uri, tz_aware=True)
    try:
        collection = mongo[namespace.database("store")]["batch"]
        docs = Aggregates(collection)
        ids = [uuid.uuid4().hex for _ in range(6)]
        for doc_id in ids:
            assert await docs.insert({"_id": doc_id, "n": 0}, [])
        raced = ids[:2]

        async def decide(found: dict[str, Document]) -> dict[str, Change]:
            for doc_id in raced:  # another writer changes these between the batch's read and its write
                current = await collection.find_one({"_id": doc_id})
                assert current is not None and await replace_versioned(collection, current, {"n": 100})
            return {doc_id: Change({"n": doc["n"] + 1}, [submitted(doc_id)]) for doc_id, doc in found.items()}

        lost = await docs.change_many(ids, decide)
        assert lost == set(raced)
        after = {d["_id"]: d async for d in collection.find({"_id": {"$in": ids}})}
        assert [after[i]["n"] for i in ids] == [100, 100, 1, 1, 1, 1]
        assert [after[i]["outbox_count"] for i in ids] == [0, 0, 1, 1, 1, 1]
    finally:
        await mongo.close()
