"""Deliveries (one per message, channel and recipient) with their schedule and every attempt.

A delivery's `_id` is derived from the message it carries, so creating it twice creates it once; its next
attempt time is stored (and indexed with its status), so a restart resumes pending retries. A dispatcher claims
a due delivery by moving its next attempt a lease ahead (a compare-and-set on its version: exactly one replica
wins); if it dies mid-attempt, the delivery is due again when the lease ends."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document, insert_new, stored_at_or_before
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES, replace_versioned
from notifications.records import DISABLED, FAILED, LEASE, PENDING

MAX_ATTEMPTS_KEPT = 20


class DeliveryRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", 1), ("next_attempt_at", 1)])
        await self.collection.create_index("status")  # nx-27017 uses a single-field index for `due`, not the above
        await self.collection.create_index([("recipient_id", 1), ("status", 1), ("updated_at", 1)])

    async def create(self, delivery: Document) -> bool:
        try:
            await self.collection.insert_one(delivery)
        except DuplicateKeyError:
            return False
        return True

    async def create_many(self, deliveries: list[Document]) -> set[str]:
        return {d["_id"] for d in await insert_new(self.collection, deliveries)}

    async def get_many(self, delivery_ids: list[str]) -> list[Document]:
        if not delivery_ids:
            return []
        return [d async for d in self.collection.find({"_id": {"$in": delivery_ids}})]

    async def due(self, now: datetime, limit: int = 50) -> list[Document]:
        """Pending deliveries whose next attempt is due, earliest first. The query is the status alone (an
        equality on an index), earliest first, and the time is compared here: the due ones are the first of that
        order. (With the time in the query nx-27017 scanned every delivery ever made, twice a second.)"""
        pending = self.collection.find({"status": PENDING}).sort("next_attempt_at", 1).limit(limit)
        return [d async for d in pending if stored_at_or_before(d.get("next_attempt_at"), now)]

    async def claim(self, due: Document, now: datetime) -> Document | None:
        """The delivery (as claimed), if nobody changed it since it was read due: this caller attempts it now."""
        if not await replace_versioned(self.collection, due, {"next_attempt_at": now + LEASE}):
            return None
        return {**due, "next_attempt_at": now + LEASE, "version": due.get("version", 0) + 1}

    async def get(self, delivery_id: str) -> Document | None:
        return await self.collection.find_one({"_id": delivery_id})

    async def record(
        self, delivery: Document, attempt: dict[str, Any], status: str, next_attempt_at: datetime | None, now: datetime
    ) -> Document:
        """Adds the attempt and the state it leads to; re-applied on the latest document if an operator's
        redelivery changed it meanwhile."""
        for _ in range(MAX_RETRIES):
            attempts = [*delivery["attempts"], attempt][-MAX_ATTEMPTS_KEPT:]
            changes = {"attempts": attempts, "status": status, "next_attempt_at": next_attempt_at, "updated_at": now}
            if await replace_versioned(self.collection, delivery, changes):
                return {**delivery, **changes, "version": delivery.get("version", 0) + 1}
            delivery = await self.get(delivery["_id"]) or delivery
        raise ConcurrentUpdate(delivery["_id"])

    async def reschedule(
        self, delivery_ids: list[str], partner_id: str | None, failed_since: datetime | None, now: datetime
    ) -> int:
        """Puts failed or disabled deliveries back in the queue, to go out now, with a fresh retry schedule: those
        named (all when none are), of one partner (or every recipient), that failed since a time (or ever)."""
        query: Document = {"status": {"$in": [FAILED, DISABLED]}}
        if delivery_ids:
            query["_id"] = {"$in": delivery_ids}
        if partner_id:
            query["recipient_id"] = partner_id
        if failed_since:
            query["updated_at"] = {"$gte": failed_since}
        changes = {"status": PENDING, "next_attempt_at": now, "round_started_at": now, "updated_at": now}
        return await self._change_all(query, changes)

    async def hold_webhooks(self, partner_id: str, now: datetime) -> int:
        """The endpoint is disabled: its pending webhooks wait, as `disabled`, for a redelivery."""
        query = {"recipient_id": partner_id, "channel": "webhook", "status": PENDING}
        return await self._change_all(query, {"status": DISABLED, "next_attempt_at": None, "updated_at": now})

    async def _change_all(self, query: Document, changes: Document) -> int:
        """One replacement per document (a lost race means another writer just changed it: it is left so)."""
        changed = 0
        async for doc in self.collection.find(query):
            changed += await replace_versioned(self.collection, doc, changes)
        return changed
