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

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", 1), ("next_attempt_at", 1)])
        await self.collection.create_index([("recipient_id", 1), ("status", 1), ("updated_at", 1)])

    async def create(self, delivery: Document) -> bool:
        try:
            await self.collection.insert_one(delivery)
        except DuplicateKeyError:
            return False
        return True

    async def due(self, now: datetime, limit: int = 50) -> list[str]:
        query = {"status": PENDING, "next_attempt_at": {"$lte": now}}
        return [d["_id"] async for d in self.collection.find(query, projection={"_id": 1}).limit(limit)]

    async def get(self, delivery_id: str) -> Document | None:
        return await self.collection.find_one({"_id": delivery_id})

    async def record(
        self, delivery: Document, attempt: dict[str, Any], status: str, next_attempt_at: datetime | None, now: datetime
    ) -> Document:
        attempts = [*delivery["attempts"], attempt][-MAX_ATTEMPTS_KEPT:]
        changes = {"attempts": attempts, "status": status, "next_attempt_at": next_attempt_at, "updated_at": now}
        await self.collection.update_one({"_id": delivery["_id"]}, {"$set": changes})
        return {**delivery, **changes}

    async def reschedule(self, query: Document, now: datetime) -> int:
        """Puts failed or disabled deliveries matching `query` back in the queue, to go out now."""
        changes = {"status": PENDING, "next_attempt_at": now, "retry_round": now, "updated_at": now}
        result = await self.collection.update_many({**query, "status": {"$in": [FAILED, DISABLED]}}, {"$set": changes})
        return result.modified_count

    async def hold_webhooks(self, partner_id: str, now: datetime) -> int:
        """The endpoint is disabled: its pending webhooks wait, as `disabled`, for a redelivery."""
        result = await self.collection.update_many(
            {"recipient_id": partner_id, "channel": "webhook", "status": PENDING},
            {"$set": {"status": DISABLED, "next_attempt_at": None, "updated_at": now}},
        )
        return result.modified_count
