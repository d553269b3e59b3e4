"""Recording matching's decisions (matched, unmatched, offered, expired, offer withdrawn) on the referral, so its
status and open offers are current and the partners concerned are told in the same write.

A request's history names the decision behind each step (`has_applied`): a repeat is a no-op. A decision that
arrives after the referral was taken or ended is superseded and skipped; one for an unknown referral, or a
transition the state machine refuses, is refused (`NotFound`, `Conflict`)."""

import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralUnmatched,
)
from goglobal_shared.router import PayloadDispatch
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.service_requests import Actor, DomainError, Offer, ServiceRequest
from intake.service_layer.errors import Conflict, NotFound
from intake.service_layer.ports import Clock, EnterpriseStore, NotStored, RequestStore

log = logging.getLogger(__name__)
MATCHING = "service:matching"


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
DECISIONS = (ReferralMatched, ReferralUnmatched, ReferralOffered, ReferralExpired, ReferralOfferWithdrawn)


def needs_profile(envelope: Envelope) -> bool:
    """An offer carries the enterprise's anonymous profile to the partner."""
    return envelope.type == ReferralOffered.event_type


def apply_decision(
    envelope: Envelope, request: ServiceRequest, enterprise: EnterpriseProfile | None, now: datetime
) -> bool:
    """Records one decision on the request; False when it came too late to matter (or was applied before).
    Raises DomainError for a transition the state machine refuses, KeyError for a referral not in the request."""
    rid = envelope.subject
    if request.has_applied(rid, envelope.id):
        return False
    applied = RECORD(envelope.data, Recording(request, rid, Actor(MATCHING, envelope.id), enterprise, now))
    if not applied:
        log.info("superseded %s skipped", envelope.type, extra={"event_id": envelope.id, "referral_id": rid})
    return applied


async def record_decision(
    requests: RequestStore, enterprises: EnterpriseStore, clock: Clock, envelope: Envelope
) -> None:
    """Records one decision in its own write (a poll's decisions together: `intake.consumers.matching_events`)."""

    async def command(request: ServiceRequest) -> bool:
        enterprise = await enterprises.profile(request.enterprise_id) if needs_profile(envelope) else None
        return apply_decision(envelope, request, enterprise, clock())

    try:
        await requests.mutate(envelope.subject, command, clock)
    except NotStored:
        raise NotFound("referral", envelope.subject) from None
    except (DomainError, ValidationError) as exc:  # ValidationError: a stored profile gone invalid
        raise Conflict(str(exc)) from exc
