"""Deliveries (one per message, channel and recipient) with their schedule and every attempt.

A delivery's `_id` is derived from the message it carries, so creating it twice creates it once; its next
attempt time is stored, so a restart resumes pending retries; each attempt runs under the delivery's lock."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.locks import DocumentLocks
from goglobal_shared.mongo import Document

PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"
MAX_ATTEMPTS_KEPT = 20


class DeliveryRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks
        # Pending deliveries and when they are due: a small collection, because FerretDB scans for any query
        # that is not an `_id` lookup. Written before the delivery, so nothing pending is ever missed.
        self.queue = collection.database[f"{collection.name}_due"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", 1), ("next_attempt_at", 1)])
        await self.collection.create_index([("recipient_id", 1), ("status", 1), ("updated_at", 1)])

    async def create(self, delivery: Document) -> bool:
        if delivery["status"] == PENDING:
            await self._queue(delivery["_id"], delivery["next_attempt_at"])
        try:
            await self.collection.insert_one(delivery)
        except DuplicateKeyError:
            return False
        return True

    async def due(self, now: datetime, limit: int = 50) -> list[str]:
        query = {"next_attempt_at": {"$lte": now}}
        return [d["_id"] async for d in self.queue.find(query, projection={"_id": 1}).limit(limit)]

    async def dequeue(self, delivery_id: str) -> None:
        """A queue entry whose delivery is missing or no longer pending (the dispatcher found it so)."""
        await self.queue.delete_one({"_id": delivery_id})

    async def _queue(self, delivery_id: str, when: datetime | None) -> None:
        if when is None:
            await self.queue.delete_one({"_id": delivery_id})
        else:
            await self.queue.replace_one({"_id": delivery_id}, {"next_attempt_at": when}, upsert=True)

    async def get(self, delivery_id: str) -> Document | None:
        return await self.collection.find_one({"_id": delivery_id})

    async def record(
        self, delivery: Document, attempt: dict[str, Any], status: str, next_attempt_at: datetime | None, now: datetime
    ) -> Document:
        attempts = [*delivery["attempts"], attempt][-MAX_ATTEMPTS_KEPT:]
        changes = {"attempts": attempts, "status": status, "next_attempt_at": next_attempt_at, "updated_at": now}
        if status == PENDING:
            await self._queue(delivery["_id"], next_attempt_at)
        await self.collection.update_one({"_id": delivery["_id"]}, {"$set": changes})
        if status != PENDING:
            await self._queue(delivery["_id"], None)
        return {**delivery, **changes}

    async def reschedule(self, query: Document, now: datetime) -> int:
        """Puts failed or disabled deliveries matching `query` back in the queue, to go out now, with a fresh
        retry schedule."""
        changes = {"status": PENDING, "next_attempt_at": now, "round_started_at": now, "updated_at": now}
        chosen = {**query, "status": {"$in": [FAILED, DISABLED]}}
        ids = [d["_id"] async for d in self.collection.find(chosen, projection={"_id": 1})]
        for delivery_id in ids:
            await self._queue(delivery_id, now)
        if ids:
            await self.collection.update_many({"_id": {"$in": ids}}, {"$set": changes})
        return len(ids)

    async def hold_webhooks(self, partner_id: str, now: datetime) -> int:
        """The endpoint is disabled: its pending webhooks wait, as `disabled`, for a redelivery."""
        query = {"recipient_id": partner_id, "channel": "webhook", "status": PENDING}
        ids = [d["_id"] async for d in self.collection.find(query, projection={"_id": 1})]
        if ids:
            changes = {"status": DISABLED, "next_attempt_at": None, "updated_at": now}
            await self.collection.update_many({"_id": {"$in": ids}}, {"$set": changes})
        for delivery_id in ids:
            await self._queue(delivery_id, None)
        return len(ids)
