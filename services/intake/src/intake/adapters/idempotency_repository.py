"""Stored outcomes of POSTs sent with an `Idempotency-Key`, so a retry gets the first answer."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document

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
            await self.collection.replace_one({"_id": record_id}, fresh, upsert=True)
            return Claim.NEW, None
        if doc["fingerprint"] != fingerprint:
            return Claim.MISMATCH, None
        if doc["state"] == "done":
            stored = StoredResponse(doc["status"], doc["content_type"], doc["body"], doc.get("location"))
            return Claim.REPLAY, stored
        return await self._take_over_if_stale(record_id, doc["locked_until"], now)

    async def _take_over_if_stale(
        self, record_id: str, locked_until: datetime, now: datetime
    ) -> tuple[Claim, StoredResponse | None]:
        """A crashed request leaves its lock behind; after it expires, a retry may run again."""
        if locked_until > now:
            return Claim.IN_PROGRESS, None
        result = await self.collection.update_one(
            {"_id": record_id, "state": "in_progress", "locked_until": locked_until},
            {"$set": {"locked_until": now + LOCK}},
        )
        return (Claim.NEW, None) if result.modified_count == 1 else (Claim.IN_PROGRESS, None)

    async def complete(self, record_id: str, response: StoredResponse) -> None:
        await self.collection.update_one(
            {"_id": record_id},
            {
                "$set": {
                    "state": "done",
                    "status": response.status,
                    "content_type": response.content_type,
                    "body": response.body,
                    "location": response.location,
                }
            },
        )

    async def release(self, record_id: str) -> None:
        """The request failed with a server error: forget it so a retry executes again."""
        await self.collection.delete_one({"_id": record_id, "state": "in_progress"})
