"""What matching's use cases (`matching.service`) need from the world, and nothing more. The real adapters are
`adapters.plan_repository`, `adapters.partner_stats` and `engine.DirectoryIndex`; tests/service/matching has
in-memory fakes of them."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from goglobal_contract.enums import ServiceCategory
from matching.engine import Partner, PartnerStats
from matching.plan import Plan

Clock = Callable[[], datetime]
PlanChange = Callable[[Plan], Awaitable[bool]]  # True when it changed the plan
StatsChange = Callable[[PartnerStats], PartnerStats]


class Plans(Protocol):
    """Offer plans, one per referral. Storing a plan stores its pending events with it, in the same write (the
    outbox): that is how matching publishes its decisions."""

    async def create_many(self, plans: list[Plan], now: datetime) -> None:
        """Stores new plans with their events; a referral that has a plan already keeps it."""

    async def change(self, referral_id: str, change: PlanChange, now: Clock) -> bool | None:
        """Runs `change` on the current plan and saves it if it returned True, compare-and-set on the plan's
        version (a lost race runs it again on the newer plan); None when there is no plan."""

    async def due(self, now: datetime, limit: int = 100) -> list[str]:
        """Referrals with an open offer past its deadline."""


class PartnerHistory(Protocol):
    """Each partner's statistics, changed once per event id."""

    async def get_many(self, partner_ids: list[str]) -> dict[str, PartnerStats]: ...

    async def apply(self, partner_id: str, event_id: str, change: StatsChange, now: datetime) -> bool:
        """False when `event_id` was applied to this partner before."""


class Directory(Protocol):
    """This replica's view of the partner directory."""

    def get(self, partner_id: str) -> Partner | None: ...

    def candidates(self, category: ServiceCategory, markets: list[str]) -> list[Partner]: ...

    def partners(self) -> list[Partner]: ...
