"""Matching's use cases, each written once: match submitted referrals, refill a plan after a decline or an expiry
(the next candidate, or unmatched), fire the offer deadlines that passed, assign an unmatched referral to an
operator's choice, and keep each partner's statistics from what happened to its offers.

The edges are thin: the consumer (`consumers.referral_events`) decodes an event and calls one use case, the
expiry scheduler calls `expire_due` on a clock. Every dependency is a port (`matching.ports`), the ranking and
the plan are pure (`engine`, `plan`), and a use case that cannot apply raises a `MatchingError`.

Idempotent on the event: a plan change checks the plan's state (a redelivered decline finds the offer gone), a
plan is created once per referral (the first decision stands), statistics remember the event ids they applied.
"""

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_contract.events import (
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralAssigned,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralOffered,
    ReferralRated,
    ReferralSubmitted,
)
from matching import stats
from matching.engine import Candidate, Partner, PartnerStats, Request, Weights, rank
from matching.errors import NoPlan, PartnerNotAssignable
from matching.plan import Plan
from matching.ports import Clock, Directory, PartnerHistory, PlanChange, Plans, StatsChange


@dataclass(frozen=True)
class OfferPolicy:
    """How offers are ranked, how many go out at once, and how long a partner has to answer."""

    weights: Weights
    fairness_margin: float
    hour: timedelta  # one hour of a response window (tests compress it)
    default_strategy: OfferStrategy = OfferStrategy.SEQUENTIAL
    parallel_offers: int = 2  # k for `parallel` when the request names none
    category_strategies: dict[ServiceCategory, OfferStrategy] = field(default_factory=dict)

    def strategy(self, submitted: ReferralSubmitted) -> tuple[OfferStrategy, int]:
        need = submitted.need
        chosen = need.offer_strategy or self.category_strategies.get(need.service_category, self.default_strategy)
        if chosen is OfferStrategy.SEQUENTIAL:
            return chosen, 1
        return chosen, need.parallel_offers or self.parallel_offers


@dataclass(frozen=True)
class Submission:
    """A submitted referral to match, and the trace its decision continues (its offers carry that trace on, up to
    the partner's webhook). The default: the trace already active."""

    event: ReferralSubmitted
    in_trace: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


@dataclass
class MatchingService:
    plans: Plans
    history: PartnerHistory
    directory: Directory
    policy: OfferPolicy
    clock: Clock

    # -- offering ----------------------------------------------------------------------------------

    async def match(self, submissions: Sequence[Submission]) -> None:
        """Ranks the partners for each new referral and plans its first offers (or finds it unmatched). One read
        of the statistics of every partner any of them may go to, one write of all their plans; a referral that
        has a plan already keeps its first decision."""
        plans = [self._new_plan(s.event) for s in submissions]
        requests = [_request(plan) for plan in plans]
        candidates = [self.directory.candidates(r.category, r.markets) for r in requests]
        history = await self.history.get_many(sorted({p.id for partners in candidates for p in partners}))
        for submission, plan, request, partners in zip(submissions, plans, requests, candidates, strict=True):
            with submission.in_trace():
                ranked = rank(partners, request, history, self.policy.weights, self.policy.fairness_margin)
                now = self.clock()
                plan.first_ranking(ranked, now)
                plan.offer(ranked, now, self.policy.hour)
        await self.plans.create_many(plans, self.clock())

    async def expire_due(self) -> int:
        """Fires every offer deadline that has passed: the offer expires and the plan is refilled. Returns how many
        plans this call fired (one fired by another replica first is left as it is)."""
        fired = 0
        for referral_id in await self.plans.due(self.clock()):
            if await self.plans.change(referral_id, self._expire, self.clock):
                fired += 1
        return fired

    async def assign(self, assigned: ReferralAssigned) -> None:
        """An operator's choice for an unmatched referral, offered whatever the ranking says."""
        partner = self.directory.get(assigned.partner_id)
        if partner is None or not partner.active:
            raise PartnerNotAssignable(assigned.partner_id)

        async def offer(plan: Plan) -> bool:
            return plan.assign(partner, self.clock(), self.policy.hour)

        await self._change(assigned.referral_id, offer)

    # -- answers and endings -----------------------------------------------------------------------

    async def declined(self, event_id: str, declined: ReferralDeclined) -> None:
        """The partner's offer closes and the plan is refilled (the next candidate, or unmatched)."""

        async def refill(plan: Plan) -> bool:
            if not plan.declined(declined.partner_id):
                return False  # a redelivered decline, or the offer was already gone
            await self._refill(plan)
            return True

        offered_at = await self._answer(declined.referral_id, declined.partner_id, refill)
        await self._count_answer(event_id, declined.partner_id, offered_at, declined.declined_at, accepted=False)

    async def accepted(self, event_id: str, accepted: ReferralAccepted) -> None:
        """Intake decided who was first: every other open offer is withdrawn."""

        async def accept(plan: Plan) -> bool:
            return plan.accepted(accepted.partner_id, self.clock())

        offered_at = await self._answer(accepted.referral_id, accepted.partner_id, accept)
        await self._count_answer(event_id, accepted.partner_id, offered_at, accepted.accepted_at, accepted=True)

    async def ended(self, event_id: str, referral_id: str, reason: OfferWithdrawalReason) -> None:
        """Withdrawn by the enterprise or closed by an operator: open offers are withdrawn, and the accepted
        partner's capacity slot (if any) frees up."""
        holder: str | None = None

        async def end(plan: Plan) -> bool:
            nonlocal holder
            holder = plan.accepted_by
            return plan.ended(reason, self.clock())

        await self._change(referral_id, end)
        if holder is not None:
            await self._count(holder, event_id, stats.released)

    async def completed(self, event_id: str, completed: ReferralCompleted) -> None:
        async def complete(plan: Plan) -> bool:
            return plan.completed()

        await self._change(completed.referral_id, complete)
        await self._count(completed.partner_id, event_id, stats.completed)

    # -- statistics of what was published ----------------------------------------------------------

    async def rated(self, event_id: str, rated: ReferralRated) -> None:
        await self._count(rated.partner_id, event_id, lambda s: stats.rated(s, rated.score))

    async def offer_published(self, event_id: str, offered: ReferralOffered) -> None:
        """Matching's own offers, read back: the statistics count what was really published."""
        await self._count(offered.partner_id, event_id, lambda s: stats.offered(s, offered.offered_at))

    async def expiry_published(self, event_id: str, expired: ReferralExpired) -> None:
        await self._count(expired.partner_id, event_id, stats.expired)

    # -- reads for the operator console ------------------------------------------------------------

    def directory_entry(self, partner_id: str) -> Partner | None:
        return self.directory.get(partner_id)

    async def partner_loads(self) -> list[tuple[Partner, PartnerStats]]:
        """Every partner with its history (empty statistics for a partner never offered anything)."""
        partners = self.directory.partners()
        history = await self.history.get_many([p.id for p in partners])
        return [(p, history.get(p.id, PartnerStats())) for p in partners]

    # -- steps -------------------------------------------------------------------------------------

    def _new_plan(self, submitted: ReferralSubmitted) -> Plan:
        need = submitted.need
        strategy, width = self.policy.strategy(submitted)
        return Plan(
            referral_id=submitted.referral_id,
            strategy=strategy,
            width=width,
            request={
                "category": need.service_category.value,
                "markets": list(need.target_markets),
                "languages": list(dict.fromkeys([*need.languages, *submitted.enterprise_languages])),
                "sector": submitted.enterprise_sector,
                "description": need.description,
                "excluded": list(need.excluded_partners),
            },
        )

    async def _ranked(self, plan: Plan) -> list[Candidate]:
        request = _request(plan)
        partners = self.directory.candidates(request.category, request.markets)
        history = await self.history.get_many([p.id for p in partners])
        return rank(partners, request, history, self.policy.weights, self.policy.fairness_margin)

    async def _refill(self, plan: Plan) -> None:
        """Re-offers to the best candidates not offered yet; with none left and none open, unmatched."""
        if plan.wants_offers:
            plan.offer(await self._ranked(plan), self.clock(), self.policy.hour)

    async def _expire(self, plan: Plan) -> bool:
        if not plan.expire_due(self.clock()):
            return False  # fired by another replica first
        await self._refill(plan)
        return True

    async def _change(self, referral_id: str, change: PlanChange) -> None:
        if await self.plans.change(referral_id, change, self.clock) is None:
            raise NoPlan(referral_id)

    async def _answer(self, referral_id: str, partner_id: str, change: PlanChange) -> datetime | None:
        """Runs `change` on the plan; returns when the plan (as the change read it) offered the partner."""
        offered_at: datetime | None = None

        async def read_then_change(plan: Plan) -> bool:
            nonlocal offered_at
            offered_at = plan.offered_at.get(partner_id)
            return await change(plan)

        await self._change(referral_id, read_then_change)
        return offered_at

    async def _count_answer(
        self, event_id: str, partner_id: str, offered_at: datetime | None, at: datetime, accepted: bool
    ) -> None:
        hours = (at - offered_at) / self.policy.hour if offered_at else 0.0
        await self._count(partner_id, event_id, lambda s: stats.answered(s, hours, accepted))

    async def _count(self, partner_id: str, event_id: str, change: StatsChange) -> None:
        await self.history.apply(partner_id, event_id, change, self.clock())


def _request(plan: Plan) -> Request:
    spec = plan.request
    return Request(
        category=ServiceCategory(spec["category"]),
        markets=spec["markets"],
        languages=spec["languages"],
        sector=spec["sector"],
        description=spec["description"],
        exclude=frozenset([*spec["excluded"], *plan.offered]),
    )
