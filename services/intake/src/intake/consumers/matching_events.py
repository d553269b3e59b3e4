"""Intake follows matching's decisions so each referral's status and open offers are current, and tells the
partners concerned in the same write (an offer reaches a partner only once intake holds it).

An offer decision that arrives after the referral was taken or ended is superseded, not an error: it is
skipped. An event for an unknown referral, or a transition the state machine refuses, is dead-lettered.
A poll's decisions are applied together (`DecisionBatch`): one read of their requests, one of the enterprises
whose profile an offer carries, one bulk write; one at a time (`handlers`) when that is not possible."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralUnmatched,
)
from goglobal_shared import tracing
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.router import EventRouter, PayloadDispatch
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.service_request_repository import NotFound, ServiceRequestRepository
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.service_requests import Actor, DomainError, Offer, ServiceRequest, request_id_of

log = logging.getLogger(__name__)
MATCHING = "service:matching"
HANDLED = (ReferralMatched, ReferralUnmatched, ReferralOffered, ReferralExpired, ReferralOfferWithdrawn)
Profiles = Callable[[str], Awaitable[EnterpriseProfile | None]]


@dataclass(frozen=True)
class Recording:
    """What recording one decision on a request needs besides the decision."""

    request: ServiceRequest
    referral_id: str
    actor: Actor
    enterprise: EnterpriseProfile | None  # read when the decision is an offer, for the profile it carries
    now: datetime


RECORD: PayloadDispatch[Recording, bool] = PayloadDispatch()  # True when the decision changed the request
RECORD.on(
    ReferralMatched,
    lambda e, r: r.request.matched(r.referral_id, [c.model_dump() for c in e.candidates], r.actor, r.now),
)
RECORD.on(ReferralUnmatched, lambda e, r: r.request.unmatched(r.referral_id, e.reason, r.actor, r.now))
RECORD.on(
    ReferralOffered,
    # The profile as the system of record holds it now: what the API shows the partner too.
    lambda e, r: r.request.offered(
        Offer(r.referral_id, e.partner_id, e.offered_at, e.respond_by, e.round), r.enterprise, r.actor, r.now
    ),
)
RECORD.on(ReferralExpired, lambda e, r: r.request.expired(r.referral_id, e.partner_id, e.offered_at, r.actor, r.now))
RECORD.on(
    ReferralOfferWithdrawn,
    lambda e, r: r.request.offer_withdrawn(r.referral_id, e.partner_id, e.reason, r.actor, r.now),
)


def _apply(envelope: Envelope, request: ServiceRequest, enterprise: EnterpriseProfile | None, now: datetime) -> bool:
    """Records one decision on the request; False when it came too late to matter (or was applied before)."""
    rid = envelope.subject
    if request.has_applied(rid, envelope.id):
        return False
    applied = RECORD(envelope.data, Recording(request, rid, Actor(MATCHING, envelope.id), enterprise, now))
    if not applied:
        log.info("superseded %s skipped", envelope.type, extra={"event_id": envelope.id, "referral_id": rid})
    return applied


def _refused(envelope: Envelope, exc: Exception) -> PermanentEventError:
    return PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}")


def router(
    requests: ServiceRequestRepository, enterprises: EnterpriseRepository, clock: Callable[[], datetime]
) -> EventRouter:
    """One decision at a time (`DecisionBatch` takes a poll's decisions together when it can). A request's
    history names the decision behind each step (`has_applied`): a repeat is a no-op, with no processed log."""

    def recorder(with_profile: bool) -> Callable[[EventPayload, Envelope], Awaitable[None]]:
        async def record(event: EventPayload, envelope: Envelope) -> None:
            async def command(request: ServiceRequest) -> bool:
                enterprise = await enterprises.profile(request.enterprise_id) if with_profile else None
                return _apply(envelope, request, enterprise, clock())

            try:
                await requests.mutate(envelope.subject, command, clock)
            except (NotFound, DomainError, ValidationError) as exc:  # ValidationError: a stored profile gone invalid
                raise _refused(envelope, exc) from exc

        return record

    routes = EventRouter()
    routes.on(ReferralOffered, recorder(with_profile=True), self_deduplicating=True)
    routes.on([t for t in HANDLED if t is not ReferralOffered], recorder(with_profile=False), self_deduplicating=True)
    return routes


@dataclass
class DecisionBatch:
    """Applies a poll's decisions in one read and one write; each request's decisions in their order."""

    requests: ServiceRequestRepository
    enterprises: EnterpriseRepository
    clock: Callable[[], datetime]
    types: frozenset[str] = RECORD.types

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        outcomes: dict[str, Exception | None] = {}
        by_request: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            by_request.setdefault(request_id_of(envelope.subject), []).append(envelope)

        async def decide(requests: dict[str, ServiceRequest]) -> dict[str, ServiceRequest]:
            profiles = await self._profiles(requests, by_request)
            now, changed = self.clock(), {}
            for request_id, decisions in by_request.items():
                request = requests.get(request_id)
                if request is not None and self._apply_all(request, decisions, profiles, now, outcomes):
                    changed[request_id] = request
                elif request is None:
                    outcomes.update({e.id: _refused(e, NotFound(e.subject)) for e in decisions})
            return changed

        lost = await self.requests.mutate_many(list(by_request), decide, self.clock)
        for request_id in lost:  # another writer came first: these go one by one
            outcomes.update({e.id: RuntimeError("lost a race") for e in by_request[request_id]})
        return [outcomes.get(e.id, RuntimeError("not decided")) for e in envelopes]

    @staticmethod
    def _apply_all(
        request: ServiceRequest,
        decisions: list[Envelope],
        profiles: dict[str, EnterpriseProfile | None],
        now: datetime,
        outcomes: dict[str, Exception | None],
    ) -> bool:
        changed = False
        for envelope in decisions:
            # In the decision's trace: what it makes intake tell the partner continues it.
            with tracing.span(f"handle {envelope.type}", envelope.traceparent, SpanKind.CONSUMER):
                try:
                    changed = _apply(envelope, request, profiles.get(request.enterprise_id), now) or changed
                    outcomes[envelope.id] = None
                except (KeyError, DomainError) as exc:  # KeyError: no such referral in the request
                    outcomes[envelope.id] = _refused(envelope, exc)
        return changed

    async def _profiles(
        self, requests: dict[str, ServiceRequest], by_request: dict[str, list[Envelope]]
    ) -> dict[str, EnterpriseProfile | None]:
        wanted = {
            request.enterprise_id
            for request_id, request in requests.items()
            if any(e.type == ReferralOffered.event_type for e in by_request[request_id])
        }
        return await self.enterprises.profiles(sorted(wanted))
