"""Matching's reactions to referral lifecycle events, routed by payload class (`router`). Each handler is
idempotent on its event: plan changes check the plan's state, statistics remember the event ids they applied."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from opentelemetry.trace import SpanKind

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralAssigned,
    ReferralClosed,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralOffered,
    ReferralRated,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from goglobal_shared import tracing
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.router import EventRouter
from matching import stats
from matching.adapters.partner_stats import PartnerStatsRepository
from matching.adapters.plan_repository import PlanRepository
from matching.engine import Candidate, DirectoryIndex, Request, rank
from matching.plan import Plan
from matching.settings import MatchingSettings


@dataclass
class Matcher:
    """What the handlers and the expiry scheduler share."""

    settings: MatchingSettings
    index: DirectoryIndex
    plans: PlanRepository
    partner_stats: PartnerStatsRepository
    clock: Callable[[], datetime]

    async def ranked(self, plan: Plan) -> list[Candidate]:
        request = _request(plan)
        partners = self.index.candidates(request.category, request.markets)
        history = await self.partner_stats.get_many([p.id for p in partners])
        return rank(partners, request, history, self.settings.weights, self.settings.fairness_margin)

    def first_offers(self, plan: Plan, ranked: list[Candidate]) -> None:
        now = self.clock()
        plan.first_ranking(ranked, now)
        plan.offer(ranked, now, self.settings.hour)

    async def refill(self, plan: Plan) -> None:
        if plan.wants_offers:
            plan.offer(await self.ranked(plan), self.clock(), self.settings.hour)

    def strategy(self, submitted: ReferralSubmitted) -> tuple[OfferStrategy, int]:
        need = submitted.need
        chosen = need.offer_strategy or self.settings.category_offer_strategies.get(
            need.service_category, self.settings.default_offer_strategy
        )
        if chosen is OfferStrategy.SEQUENTIAL:
            return chosen, 1
        return chosen, need.parallel_offers or self.settings.parallel_offers

    async def change(self, referral_id: str, change: Callable[[Plan], Awaitable[bool]]) -> None:
        if await self.plans.change(referral_id, change, self.clock) is None:
            raise PermanentEventError(f"no offer plan for referral {referral_id}")


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


def _new_plan(m: Matcher, submitted: ReferralSubmitted) -> Plan:
    need = submitted.need
    strategy, width = m.strategy(submitted)
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


async def on_submitted(m: Matcher, envelope: Envelope, submitted: ReferralSubmitted) -> None:
    plan = _new_plan(m, submitted)
    m.first_offers(plan, await m.ranked(plan))
    await m.plans.create(plan, m.clock())  # False on a redelivery: the first decision stands


@dataclass
class SubmissionBatch:
    """A poll's new referrals decided together: one read of the statistics of every partner any of them may go
    to, one write of all their plans (a referral that has a plan already keeps its first decision)."""

    matcher: Matcher
    types: frozenset[str] = frozenset({ReferralSubmitted.event_type})

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        m = self.matcher
        submitted = [e for e in envelopes if isinstance(e.data, ReferralSubmitted)]
        plans = [_new_plan(m, e.data) for e in submitted if isinstance(e.data, ReferralSubmitted)]
        requests = [_request(plan) for plan in plans]
        candidates = [m.index.candidates(r.category, r.markets) for r in requests]
        history = await m.partner_stats.get_many(sorted({p.id for partners in candidates for p in partners}))
        for envelope, plan, request, partners in zip(submitted, plans, requests, candidates, strict=True):
            # In the submission's trace: the offers it leads to continue it, up to the partner's webhook.
            with tracing.span(f"handle {envelope.type}", envelope.traceparent, SpanKind.CONSUMER):
                ranked = rank(partners, request, history, m.settings.weights, m.settings.fairness_margin)
                m.first_offers(plan, ranked)
        await m.plans.create_many(plans, m.clock())
        return [None] * len(envelopes)


async def on_declined(m: Matcher, envelope: Envelope, declined: ReferralDeclined) -> None:
    offered_at: list[datetime | None] = [None]

    async def change(plan: Plan) -> bool:
        offered_at[0] = plan.offered_at.get(declined.partner_id)
        if not plan.declined(declined.partner_id):
            return False  # a redelivered decline, or the offer was already gone
        await m.refill(plan)
        return True

    await m.change(declined.referral_id, change)
    await _answered(m, envelope, declined.partner_id, offered_at[0], declined.declined_at, accepted=False)


async def on_accepted(m: Matcher, envelope: Envelope, accepted: ReferralAccepted) -> None:
    offered_at: list[datetime | None] = [None]

    async def change(plan: Plan) -> bool:
        offered_at[0] = plan.offered_at.get(accepted.partner_id)
        return plan.accepted(accepted.partner_id, m.clock())

    await m.change(accepted.referral_id, change)
    await _answered(m, envelope, accepted.partner_id, offered_at[0], accepted.accepted_at, accepted=True)


async def on_assigned(m: Matcher, envelope: Envelope, assigned: ReferralAssigned) -> None:
    partner = m.index.get(assigned.partner_id)
    if partner is None or not partner.active:
        raise PermanentEventError(f"partner {assigned.partner_id} is not an active partner in the directory")

    async def change(plan: Plan) -> bool:
        return plan.assign(partner, m.clock(), m.settings.hour)

    await m.change(assigned.referral_id, change)


async def on_ended(m: Matcher, envelope: Envelope, ended: ReferralWithdrawn | ReferralClosed) -> None:
    reason = (
        OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE
        if isinstance(ended, ReferralWithdrawn)
        else OfferWithdrawalReason.CLOSED_BY_OPERATOR
    )
    holder: list[str | None] = [None]

    async def change(plan: Plan) -> bool:
        holder[0] = plan.accepted_by
        return plan.ended(reason, m.clock())

    await m.change(ended.referral_id, change)
    if holder[0] is not None:  # the accepted partner's slot frees up
        await m.partner_stats.apply(holder[0], envelope.id, stats.released, m.clock())


async def on_completed(m: Matcher, envelope: Envelope, completed: ReferralCompleted) -> None:
    async def change(plan: Plan) -> bool:
        return plan.completed()

    await m.change(completed.referral_id, change)
    await m.partner_stats.apply(completed.partner_id, envelope.id, stats.completed, m.clock())


async def on_rated(m: Matcher, envelope: Envelope, rated: ReferralRated) -> None:
    await m.partner_stats.apply(rated.partner_id, envelope.id, lambda s: stats.rated(s, rated.score), m.clock())


async def on_offered(m: Matcher, envelope: Envelope, offered: ReferralOffered) -> None:
    """Matching's own offers, read back: the statistics count what was really published."""
    await m.partner_stats.apply(
        offered.partner_id, envelope.id, lambda s: stats.offered(s, offered.offered_at), m.clock()
    )


async def on_expired(m: Matcher, envelope: Envelope, expired: ReferralExpired) -> None:
    await m.partner_stats.apply(expired.partner_id, envelope.id, stats.expired, m.clock())


async def _answered(
    m: Matcher, envelope: Envelope, partner_id: str, offered_at: datetime | None, at: datetime, accepted: bool
) -> None:
    """`offered_at`: when the plan (as the change read it) offered the referral to the partner."""
    hours = (at - offered_at) / m.settings.hour if offered_at else 0.0
    await m.partner_stats.apply(partner_id, envelope.id, lambda s: stats.answered(s, hours, accepted), m.clock())


def router(m: Matcher) -> EventRouter:
    """One step per event type. A plan is created once per referral, and a repeat finds it (the first decision
    stands): no processed log for submissions. The other steps keep the log: partner statistics remember only
    their latest event ids."""
    routes = EventRouter()
    routes.on(ReferralSubmitted, lambda e, env: on_submitted(m, env, e), self_deduplicating=True)
    routes.on(ReferralDeclined, lambda e, env: on_declined(m, env, e))
    routes.on(ReferralAccepted, lambda e, env: on_accepted(m, env, e))
    routes.on(ReferralAssigned, lambda e, env: on_assigned(m, env, e))
    routes.on(ReferralWithdrawn, lambda e, env: on_ended(m, env, e))
    routes.on(ReferralClosed, lambda e, env: on_ended(m, env, e))
    routes.on(ReferralCompleted, lambda e, env: on_completed(m, env, e))
    routes.on(ReferralRated, lambda e, env: on_rated(m, env, e))
    routes.on(ReferralOffered, lambda e, env: on_offered(m, env, e))
    routes.on(ReferralExpired, lambda e, env: on_expired(m, env, e))
    return routes
