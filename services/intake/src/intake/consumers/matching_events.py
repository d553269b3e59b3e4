"""Intake follows matching's decisions so each referral's status and open offers are current, and tells the
partners concerned in the same write (an offer reaches a partner only once intake holds it).

An offer decision that arrives after the referral was taken or ended is superseded, not an error: it is
skipped. An event for an unknown referral, or a transition the state machine refuses, is dead-lettered."""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import ValidationError

from goglobal_shared.consumer import Handler
from goglobal_shared.envelope import Envelope
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.events import (
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralUnmatched,
)
from intake.adapters.enterprise_repository import EnterpriseRepository
from intake.adapters.service_request_repository import NotFound, ServiceRequestRepository
from intake.domain.service_requests import Actor, DomainError, Offer, ServiceRequest

log = logging.getLogger(__name__)
MATCHING = "service:matching"
HANDLED = (ReferralMatched, ReferralUnmatched, ReferralOffered, ReferralExpired, ReferralOfferWithdrawn)


def _apply(
    envelope: Envelope, enterprises: EnterpriseRepository, now: datetime
) -> Callable[[ServiceRequest], Awaitable[bool]]:
    actor, rid, event = Actor(MATCHING, envelope.id), envelope.subject, envelope.data

    async def command(request: ServiceRequest) -> bool:
        if request.has_applied(rid, envelope.id):
            return False
        if isinstance(event, ReferralMatched):
            applied = request.matched(rid, [c.model_dump() for c in event.candidates], actor, now)
        elif isinstance(event, ReferralUnmatched):
            applied = request.unmatched(rid, event.reason, actor, now)
        elif isinstance(event, ReferralOffered):
            offer = Offer(rid, event.partner_id, event.offered_at, event.respond_by, event.round)
            # The profile as the system of record holds it now: what the API shows the partner too.
            applied = request.offered(offer, await enterprises.profile(request.enterprise_id), actor, now)
        elif isinstance(event, ReferralExpired):
            applied = request.expired(rid, event.partner_id, event.offered_at, actor, now)
        else:
            assert isinstance(event, ReferralOfferWithdrawn)
            applied = request.offer_withdrawn(rid, event.partner_id, event.reason, actor, now)
        if not applied:
            log.info("superseded %s skipped", envelope.type, extra={"event_id": envelope.id, "referral_id": rid})
        return applied

    return command


def handlers(
    requests: ServiceRequestRepository, enterprises: EnterpriseRepository, clock: Callable[[], datetime]
) -> dict[str, Handler]:
    async def handle(envelope: Envelope) -> None:
        try:
            await requests.mutate(envelope.subject, _apply(envelope, enterprises, clock()), clock)
        except (NotFound, DomainError, ValidationError) as exc:  # ValidationError: a stored profile gone invalid
            raise PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}") from exc

    return {t.event_type: handle for t in HANDLED}
