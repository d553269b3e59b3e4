"""Matching's consumer edge: each referral lifecycle event, decoded and routed by payload class (`router`), calls
one use case of `matching.service`; a poll's submissions are matched together (`SubmissionBatch`). A use case's
refusal (`MatchingError`) is translated here, once: the event can never apply, so it is dead-lettered."""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.trace import SpanKind

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
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
from matching.errors import MatchingError
from matching.service import MatchingService, Submission

P = TypeVar("P", bound=EventPayload)
UseCase = Callable[[P, Envelope], Awaitable[None]]


@dataclass
class SubmissionBatch:
    """A poll's new referrals matched together (one read of statistics, one write of plans), each decided in its
    own event's trace."""

    service: MatchingService
    types: frozenset[str] = frozenset({ReferralSubmitted.event_type})

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        submissions = [
            Submission(e.data, functools.partial(tracing.span, f"handle {e.type}", e.traceparent, SpanKind.CONSUMER))
            for e in envelopes
            if isinstance(e.data, ReferralSubmitted)  # narrows: `types` lets only submissions in
        ]
        await self.service.match(submissions)
        return [None] * len(envelopes)


def router(service: MatchingService) -> EventRouter:
    """One use case per event type. A plan is created once per referral, and a repeat finds it (the first decision
    stands): no processed log for submissions. The other steps keep the log: partner statistics remember only
    their latest event ids."""
    routes = EventRouter()
    withdrawn, closed = OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, OfferWithdrawalReason.CLOSED_BY_OPERATOR
    _on(routes, ReferralSubmitted, lambda e, env: service.match([Submission(e)]), self_deduplicating=True)
    _on(routes, ReferralDeclined, lambda e, env: service.declined(env.id, e))
    _on(routes, ReferralAccepted, lambda e, env: service.accepted(env.id, e))
    _on(routes, ReferralAssigned, lambda e, env: service.assign(e))
    _on(routes, ReferralWithdrawn, lambda e, env: service.ended(env.id, e.referral_id, withdrawn))
    _on(routes, ReferralClosed, lambda e, env: service.ended(env.id, e.referral_id, closed))
    _on(routes, ReferralCompleted, lambda e, env: service.completed(env.id, e))
    _on(routes, ReferralRated, lambda e, env: service.rated(env.id, e))
    _on(routes, ReferralOffered, lambda e, env: service.offer_published(env.id, e))
    _on(routes, ReferralExpired, lambda e, env: service.expiry_published(env.id, e))
    return routes


def _on(routes: EventRouter, payload: type[P], use_case: UseCase[P], *, self_deduplicating: bool = False) -> None:
    async def handle(event: P, envelope: Envelope) -> None:
        try:
            await use_case(event, envelope)
        except MatchingError as exc:
            raise PermanentEventError(str(exc)) from exc

    routes.on(payload, handle, self_deduplicating=self_deduplicating)
