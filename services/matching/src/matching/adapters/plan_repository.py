"""Offer plans, one document per referral (`_id` = referral id), with their pending events in its outbox.

Changes are compare-and-set on the plan's version (the consumer, the expiry scheduler and other replicas may
race): the loser reads the plan again and re-decides. `next_deadline` is present only while an offer is open,
and indexed: the scheduler's query for due plans reads only those."""

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.enums import OfferStrategy
from goglobal_shared.mongo import Document, stored_at_or_before
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import Change
from goglobal_shared.store.outbox import Written, ignore_written
from matching.plan import Offer, Plan, PlanStatus
from matching.ports import PlanChange

DEADLINE = "next_deadline"  # absent when the plan has no open offer
_WITH_DEADLINE = {DEADLINE: {"$exists": True}}


class PlanRepository:
    def __init__(self, collection: AsyncCollection[Document], on_events: Written = ignore_written) -> None:
        self.docs = Aggregates(collection, on_events)
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.docs.ensure_indexes()
        await self.collection.create_index(DEADLINE)

    async def create_many(self, plans: list[Plan], now: datetime) -> None:
        """Stores new plans and their events in one write; a referral that has a plan already keeps it."""
        await self.docs.insert_many([(_to_document(plan, now), plan.pending) for plan in plans])
        for plan in plans:
            plan.pending = []

    async def get(self, referral_id: str) -> Plan | None:
        doc = await self.docs.get(referral_id)
        return _from_document(doc) if doc else None

    async def change(self, referral_id: str, change: PlanChange, now: Callable[[], datetime]) -> bool | None:
        """Runs `change` on the current plan and saves it; None when there is no plan."""
        changed = False

        async def decide(doc: Document) -> Change | None:
            nonlocal changed
            plan = _from_document(doc)
            changed = await change(plan)
            if not changed:
                return None
            fields = _to_document(plan, now())
            del fields["_id"]
            return Change(fields, plan.pending, unset=frozenset() if plan.next_deadline else frozenset({DEADLINE}))

        if await self.docs.change(referral_id, decide) is None:
            return None
        return changed

    async def due(self, now: datetime, limit: int = 100) -> list[str]:
        """Referrals with an offer past its deadline, earliest first. The query asks only for plans with a deadline,
        earliest first, and the time is compared here: the due ones are the first of that order. (A date range in
        the query made nx-27017 scan every plan ever made on each pass.)"""
        docs = self.collection.find(_WITH_DEADLINE, projection={DEADLINE: 1}).sort(DEADLINE, 1).limit(limit)
        return [doc["_id"] async for doc in docs if stored_at_or_before(doc.get(DEADLINE), now)]

    async def open_offers(self, now: datetime) -> tuple[int, int]:
        """Plans with an open offer, and those of them past a deadline (for the metrics)."""
        found = self.collection.find(_WITH_DEADLINE, projection={DEADLINE: 1})
        deadlines = [doc.get(DEADLINE) async for doc in found]
        return len(deadlines), sum(1 for d in deadlines if stored_at_or_before(d, now))


def _to_document(plan: Plan, now: datetime) -> Document:
    doc = asdict(plan)
    del doc["pending"], doc["referral_id"], doc["version"]
    stored = {
        "_id": plan.referral_id,
        **doc,
        "status": plan.status.value,
        "strategy": plan.strategy.value,
        "updated_at": now,
    }
    if plan.next_deadline is not None:  # absent otherwise: never in the index of due plans
        stored[DEADLINE] = plan.next_deadline
    return stored


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
