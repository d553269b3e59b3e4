"""Referral documents in MongoDB, with their pending events in the same document (see shared outbox)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.enums import ReferralStatus
from goglobal_shared.envelope import Envelope
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, new_document_outbox
from goglobal_shared.state_machine import IllegalTransition, can_transition


class ReferralNotFound(LookupError):
    def __init__(self, referral_id: str) -> None:
        super().__init__(f"no referral {referral_id!r}")
        self.referral_id = referral_id


class ReferralRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)
        await self.collection.create_index([("status", 1), ("submitted_at", 1)])

    async def add(self, referral_id: str, submitted: Envelope, now: datetime) -> Document:
        data = submitted.data.model_dump(mode="json")
        doc: Document = {
            "_id": referral_id,
            "status": ReferralStatus.SUBMITTED.value,
            "enterprise_name": data["enterprise_name"],
            "service_category": data["service_category"],
            "target_markets": data["target_markets"],
            "description": data["description"],
            "submitted_at": now,
            "updated_at": now,
            "history": [],
            **new_document_outbox([submitted]),
        }
        await self.collection.insert_one(doc)
        return doc

    async def get(self, referral_id: str) -> Document:
        doc = await self.collection.find_one({"_id": referral_id}, projection={"outbox": 0})
        if doc is None:
            raise ReferralNotFound(referral_id)
        return doc

    async def apply(
        self, referral_id: str, event_id: str, target: ReferralStatus, fields: Mapping[str, Any], now: datetime
    ) -> None:
        """Moves the referral to `target` if the state machine allows it; a repeat of `event_id` is a no-op.

        The update is conditional on the status read, so two concurrent changes cannot both apply."""
        doc = await self.get(referral_id)
        if any(step.get("event_id") == event_id for step in doc.get("history", [])):
            return
        current = ReferralStatus(doc["status"])
        if not can_transition(current, target):
            raise IllegalTransition(current, target)
        step = {"event_id": event_id, "from": current.value, "to": target.value, "at": now}
        result = await self.collection.update_one(
            {"_id": referral_id, "status": current.value},
            {"$set": {"status": target.value, "updated_at": now, **fields}, "$push": {"history": step}},
        )
        if result.matched_count == 0:
            # Someone else changed it between our read and write: re-evaluate against the new status.
            await self.apply(referral_id, event_id, target, fields, now)
