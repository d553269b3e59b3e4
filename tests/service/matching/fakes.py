"""In-memory fakes of matching's ports (`matching.ports`), with the semantics of the real adapters: a plan is
created once per referral and its events are published exactly when it is stored (the outbox); a plan change is a
compare-and-set on the plan's version (a change that lost a race is decided again on the newer plan); partner
statistics apply an event id once. The directory needs no fake: `engine.DirectoryIndex` is in memory already."""

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES
from matching.engine import PartnerStats
from matching.plan import Plan
from matching.ports import Clock, PlanChange, StatsChange

P = TypeVar("P", bound=EventPayload)


@dataclass
class FakePlans:
    """`adapters.plan_repository.PlanRepository`, with `published` standing for the outbox relay: every event of
    every stored write, in order."""

    stored: dict[str, Plan] = field(default_factory=dict)
    published: list[Envelope] = field(default_factory=list)
    changes_lost: int = 0
    # Writes that come between a change's read and its save (each runs once): how a test stages a race.
    meanwhile: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    async def create_many(self, plans: list[Plan], now: datetime) -> None:
        for plan in plans:
            if plan.referral_id not in self.stored:  # a referral that has a plan keeps it, and its events
                self._store(plan, version=1)
            plan.pending = []

    async def change(self, referral_id: str, change: PlanChange, now: Clock) -> bool | None:
        for _ in range(MAX_RETRIES):
            current = self.stored.get(referral_id)
            if current is None:
                return None
            plan = copy.deepcopy(current)
            if not await change(plan):
                return False
            while self.meanwhile:
                await self.meanwhile.pop(0)()
            if self.stored[referral_id].version != current.version:
                self.changes_lost += 1  # another writer came first while the change was decided
                continue
            self._store(plan, version=current.version + 1)
            return True
        raise ConcurrentUpdate(referral_id)

    async def due(self, now: datetime, limit: int = 100) -> list[str]:
        due = [p.referral_id for p in self.stored.values() if p.next_deadline is not None and p.next_deadline <= now]
        return due[:limit]

    def _store(self, plan: Plan, version: int) -> None:
        self.published.extend(plan.pending)
        plan.pending, plan.version = [], version
        self.stored[plan.referral_id] = copy.deepcopy(plan)

    def payloads(self, kind: type[P]) -> list[P]:
        """The published events of one type, oldest first."""
        return [e.data for e in self.published if isinstance(e.data, kind)]


@dataclass
class FakeHistory:
    """`adapters.partner_stats.PartnerStatsRepository`: each event id applies once per partner."""

    stats: dict[str, PartnerStats] = field(default_factory=dict)
    applied: dict[str, set[str]] = field(default_factory=dict)

    async def get_many(self, partner_ids: list[str]) -> dict[str, PartnerStats]:
        return {pid: self.stats[pid] for pid in partner_ids if pid in self.stats}

    async def apply(self, partner_id: str, event_id: str, change: StatsChange, now: datetime) -> bool:
        seen = self.applied.setdefault(partner_id, set())
        if event_id in seen:
            return False
        self.stats[partner_id] = change(self.stats.get(partner_id, PartnerStats()))
        seen.add(event_id)
        return True
