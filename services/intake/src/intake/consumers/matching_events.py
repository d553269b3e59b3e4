"""Intake follows matching's decisions so each referral's status and open offers are current.

An offer decision that arrives after the referral was taken or ended is superseded, not an error: it is
skipped. An event for an unknown referral, or a transition the state machine refuses, is dead-lettered."""

import logging
from collections.abc import Callable
from datetime import datetime

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
from intake.adapters.service_request_repository import NotFound, ServiceRequestRepository
from intake.domain.service_requests import Actor, DomainError, ServiceRequest

log = logging.getLogger(__name__)
MATCHING = "service:matching"
HANDLED = (ReferralMatched, ReferralUnmatched, ReferralOffered, ReferralExpired, ReferralOfferWithdrawn)


def _apply(envelope: Envelope, now: datetime) -> Callable[[ServiceRequest], bool]:
    actor, rid, event = Actor(MATCHING, envelope.id), envelope.subject, envelope.data

    def command(request: ServiceRequest) -> bool:
        if request.has_applied(rid, envelope.id):
            return False
        if isinstance(event, ReferralMatched):
            applied = request.matched(rid, [c.model_dump() for c in event.candidates], actor, now)
        elif isinstance(event, ReferralUnmatched):
            applied = request.unmatched(rid, event.reason, actor, now)
        elif isinstance(event, ReferralOffered):
            applied = request.offered(rid, event.partner_id, actor, now, event.respond_by)
        elif isinstance(event, ReferralExpired):
            applied = request.expired(rid, event.partner_id, actor, now)
        else:
            assert isinstance(event, ReferralOfferWithdrawn)
            applied = request.offer_withdrawn(rid, event.partner_id, event.reason.value, actor, now)
        if not applied:
            log.info("superseded %s skipped", envelope.type, extra={"event_id": envelope.id, "referral_id": rid})
        return applied

    return command


def handlers(requests: ServiceRequestRepository, clock: Callable[[], datetime]) -> dict[str, Handler]:
    async def handle(envelope: Envelope) -> None:
        try:
            await requests.mutate(envelope.subject, _apply(envelope, clock()), clock)
        except (NotFound, DomainError) as exc:
            raise PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}") from exc

    return {t.event_type: handle for t in HANDLED}
