"""Intake follows matching's decisions so each referral's status and offer are current."""

from collections.abc import Callable
from datetime import datetime

from goglobal_shared.consumer import Handler
from goglobal_shared.envelope import Envelope
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.events import ReferralMatched, ReferralOffered, ReferralUnmatched
from intake.adapters.service_request_repository import NotFound, ServiceRequestRepository
from intake.domain.service_requests import Actor, DomainError, ServiceRequest

MATCHING = "service:matching"


def _apply(envelope: Envelope, now: datetime) -> Callable[[ServiceRequest], bool]:
    actor, rid, event = Actor(MATCHING, envelope.id), envelope.subject, envelope.data

    def command(request: ServiceRequest) -> bool:
        if request.has_applied(rid, envelope.id):
            return False
        if isinstance(event, ReferralMatched):
            request.matched(rid, [c.model_dump() for c in event.candidates], actor, now)
        elif isinstance(event, ReferralUnmatched):
            request.unmatched(rid, event.reason, actor, now)
        elif isinstance(event, ReferralOffered):
            request.offered(rid, event.partner_id, actor, now)
        return True

    return command


def handlers(requests: ServiceRequestRepository, clock: Callable[[], datetime]) -> dict[str, Handler]:
    async def handle(envelope: Envelope) -> None:
        try:
            await requests.mutate(envelope.subject, _apply(envelope, clock()), clock)
        except (NotFound, DomainError) as exc:
            raise PermanentEventError(f"{envelope.type} cannot apply to referral {envelope.subject}: {exc}") from exc

    return {t.event_type: handle for t in (ReferralMatched, ReferralUnmatched, ReferralOffered)}
