"""Stored outcomes of POSTs sent with an `Idempotency-Key`, so a retry gets the first answer."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document
from goglobal_shared.store.aggregates import replace_versioned

RETENTION = timedelta(hours=24)
LOCK = timedelta(seconds=60)


class Claim(StrEnum):
    NEW = "new"  # go ahead and execute
    REPLAY = "replay"  # a stored response exists
    IN_PROGRESS = "in_progress"  # another request with this key is executing
    MISMATCH = "mismatch"  # same key, different request


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes
    location: str | None


class IdempotencyRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def claim(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]:
        fresh = {
            "_id": record_id,
            "fingerprint": fingerprint,
            "state": "in_progress",
            "created_at": now,
            "locked_until": now + LOCK,
        }
        try:
            await self.collection.insert_one(fresh)
            return Claim.NEW, None
        except DuplicateKeyError:
            pass
        doc = await self.collection.find_one({"_id": record_id})
        if doc is None or doc["created_at"] < now - RETENTION:
            await self.collection.replace_one({"_id": record_id}, fresh, upsert=True)  # `fresh` holds the `_id`
            return Claim.NEW, None
        if doc["fingerprint"] != fingerprint:
            return Claim.MISMATCH, None
        if doc["state"] == "done":
            stored = StoredResponse(doc["status"], doc["content_type"], doc["body"], doc.get("location"))
            return Claim.REPLAY, stored
        return await self._take_over_if_stale(record_id, doc["locked_until"], now)

    async def lookup(self, record_id: str, fingerprint: str, now: datetime) -> tuple[Claim, StoredResponse | None]:
        """For a route that is idempotent by itself (it finds its own earlier result): no claim is written, only
        the answer afterwards (`store`), so a new key costs one write."""
        doc = await self.collection.find_one({"_id": record_id})
        if doc is None or doc["created_at"] < now - RETENTION or doc["state"] != "done":
            return Claim.NEW, None
        if doc["fingerprint"] != fingerprint:
            return Claim.MISMATCH, None
        return Claim.REPLAY, StoredResponse(doc["status"], doc["content_type"], doc["body"], doc.get("location"))

    async def store(self, record_id: str, fingerprint: str, response: StoredResponse, now: datetime) -> None:
        doc = {"_id": record_id, "fingerprint": fingerprint, "created_at": now, **_done(response)}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            # A concurrent first try of the same request stored its answer, or the record expired: replaced. The
            # answer to another request under the key (a 4xx the route gave it) never replaces the first one.
            same_or_expired = {"$or": [{"fingerprint": fingerprint}, {"created_at": {"$lt": now - RETENTION}}]}
            await self.collection.replace_one({"_id": record_id, **same_or_expired}, doc)

    async def _take_over_if_stale(
        self, record_id: str, locked_until: datetime, now: datetime
    ) -> tuple[Claim, StoredResponse | None]:
        """A crashed request leaves its lock behind; after it expires, a retry may run again."""
        if locked_until > now:
            return Claim.IN_PROGRESS, None
        doc = await self.collection.find_one({"_id": record_id, "state": "in_progress"})
        if doc is None or doc["locked_until"] != locked_until:
            return Claim.IN_PROGRESS, None
        taken = await replace_versioned(self.collection, doc, {"locked_until": now + LOCK})
        return (Claim.NEW, None) if taken else (Claim.IN_PROGRESS, None)

    async def complete(self, record_id: str, response: StoredResponse) -> None:
        await self.collection.update_one({"_id": record_id}, {"$set": _done(response)})

    async def release(self, record_id: str) -> None:
        """The request failed with a server error: forget it so a retry executes again."""
        await self.collection.delete_one({"_id": record_id, "state": "in_progress"})


def _done(response: StoredResponse) -> Document:
    return {
        "state": "done",
        "status": response.status,
        "content_type": response.content_type,
        "body": response.body,
        "location": response.location,
    }
