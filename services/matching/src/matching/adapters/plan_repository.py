"""Offer plans, one document per referral (`_id` = referral id), with their pending events in its outbox.

Every change runs under the plan's document lock (FerretDB has no atomic conditional update), so the
consumer, the expiry scheduler and other replicas never lose each other's writes."""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.partner import OfferStrategy
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, mark_pending, new_document_outbox, outbox_fields
from matching.plan import Offer, Plan, PlanStatus

Change = Callable[[Plan], Awaitable[bool]]  # True when it changed the plan


class PlanRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks
        self.deadlines = collection.database[f"{collection.name}_deadlines"]

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)
        await self.collection.create_index("next_deadline")

    async def create(self, plan: Plan, now: datetime) -> bool:
        """Stores a new plan and its events atomically; False if the referral already has one."""
        await mark_pending(self.collection, plan.referral_id)
        await self.track_deadline(plan)
        doc = {**_to_document(plan, now), "version": 1, **new_document_outbox(plan.pending)}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        plan.version, plan.pending = 1, []
        return True

    async def get(self, referral_id: str) -> Plan | None:
        doc = await self.collection.find_one({"_id": referral_id}, projection={"outbox": 0})
        return _from_document(doc) if doc else None

    async def change(self, referral_id: str, change: Change, now: Callable[[], datetime]) -> bool | None:
        """Runs `change` on the current plan under its lock and saves it; None when there is no plan."""
        async with self.locks.hold(document_key(self.collection, referral_id)):
            plan = await self.get(referral_id)
            if plan is None:
                return None
            if not await change(plan):
                return False
            await self._save(plan, now())
            return True

    async def due(self, now: datetime, limit: int = 100) -> list[str]:
        """Referrals with an offer past its deadline, from the small collection of plans with open offers
        (FerretDB would scan every plan for a query on `next_deadline`)."""
        docs = self.deadlines.find({"next_deadline": {"$lte": now}}, projection={"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in docs]

    async def open_offers(self, now: datetime) -> tuple[int, int]:
        """Plans with an open offer, and those of them past a deadline (for the metrics)."""
        deadlines = [doc["next_deadline"] async for doc in self.deadlines.find({})]
        return len(deadlines), sum(1 for d in deadlines if d.replace(tzinfo=d.tzinfo or UTC) <= now)

    async def track_deadline(self, plan: Plan) -> None:
        """Kept before the plan is written; the scheduler re-checks the plan itself under its lock."""
        deadline = plan.next_deadline
        if deadline is None:
            await self.deadlines.delete_one({"_id": plan.referral_id})
        else:
            await self.deadlines.replace_one({"_id": plan.referral_id}, {"next_deadline": deadline}, upsert=True)

    async def _save(self, plan: Plan, now: datetime) -> None:
        version = plan.version + 1
        fields = _to_document(plan, now)
        del fields["_id"]
        update: dict[str, Any] = {
            "$set": {**fields, "version": version, **outbox_fields(plan.pending, start_seq=version * 1000)}
        }
        if plan.pending:
            update["$inc"] = {"outbox_count": len(plan.pending)}
            await mark_pending(self.collection, plan.referral_id)
        await self.track_deadline(plan)
        # The plan's lock serialises writers (a `version` filter would make FerretDB scan every plan).
        result = await self.collection.update_one({"_id": plan.referral_id}, update)
        if result.matched_count != 1:
            raise RuntimeError(f"plan {plan.referral_id} changed under its lock")
        plan.version, plan.pending = version, []


def _to_document(plan: Plan, now: datetime) -> Document:
    doc = asdict(plan)
    del doc["pending"], doc["referral_id"]
    return {
        "_id": plan.referral_id,
        **doc,
        "status": plan.status.value,
        "strategy": plan.strategy.value,
        "next_deadline": plan.next_deadline,
        "updated_at": now,
    }


def _from_document(doc: Document) -> Plan:
    return Plan(
        referral_id=doc["_id"],
        request=doc["request"],
        strategy=OfferStrategy(doc["strategy"]),
        width=doc["width"],
        status=PlanStatus(doc["status"]),
        candidates=doc["candidates"],
        offered=doc["offered"],
        open_offers=[Offer(**o) for o in doc["open_offers"]],
        offered_at=doc["offered_at"],
        accepted_by=doc["accepted_by"],
        version=doc["version"],
    )
