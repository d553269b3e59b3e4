"""One offer plan per referral (`_id` = referral id): the ranked candidates, who was offered, and the
outgoing events in the document's outbox. Updates are optimistic on `version`."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.envelope import Envelope
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, new_document_outbox, outbox_fields
from matching.offers import Decision


class MatchRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)

    async def create(self, referral_id: str, plan: dict[str, Any], events: list[Envelope], now: datetime) -> bool:
        """Stores the first plan and its events atomically; False if this referral was already planned."""
        doc = {
            "_id": referral_id,
            **plan,
            "version": 1,
            "decided_at": now,
            "updated_at": now,
            **new_document_outbox(events),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, referral_id: str) -> Document | None:
        return await self.collection.find_one({"_id": referral_id}, projection={"outbox": 0})

    async def change(self, referral_id: str, decide: Callable[[Document], Decision | None], now: datetime) -> bool:
        """Runs `decide` on the current plan under the plan's lock and stores what it decided.
        False when there is no plan; `decide` returns None when there is nothing to change."""
        async with self.locks.hold(document_key(self.collection, referral_id)):
            plan = await self.get(referral_id)
            if plan is None:
                return False
            decision = decide(plan)
            if decision is not None and not await self.update(plan, decision.changes, decision.events, now):
                raise RuntimeError(f"plan {referral_id} changed under its lock")
            return True

    async def update(self, plan: Document, changes: dict[str, Any], events: list[Envelope], now: datetime) -> bool:
        """False when someone else changed the plan since it was read."""
        version = plan["version"] + 1
        update: dict[str, Any] = {
            "$set": {
                **changes,
                "version": version,
                "updated_at": now,
                **outbox_fields(events, start_seq=version * 1000),
            }
        }
        if events:
            update["$inc"] = {"outbox_count": len(events)}
        result = await self.collection.update_one({"_id": plan["_id"], "version": plan["version"]}, update)
        return result.matched_count == 1
