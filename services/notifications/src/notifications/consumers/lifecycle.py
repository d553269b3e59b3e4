"""Notifications' consumer edge: each event it consumes, routed by payload class, calls one use case of
`notifications.service` (forward a partner event, e-mail an enterprise, keep a projection, redeliver)."""

from dataclasses import dataclass

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    EnterpriseUpserted,
    PartnerUpserted,
    ReferralAccepted,
    ReferralCompleted,
    ReferralOffered,
    ReferralSubmitted,
    ReferralUnmatched,
)
from goglobal_contract.notification_events import RedeliveryRequested
from goglobal_contract.partner_events import PARTNER_PAYLOADS, PartnerEvent
from goglobal_shared.router import EventRouter, PayloadDispatch
from notifications.errors import PartnerNotKnownYet
from notifications.service import NotificationService


def router(service: NotificationService, emails_enterprises: bool = True) -> EventRouter:
    """Without e-mail, the lifecycle events that only e-mail enterprises are not consumed at all.

    Forwarding a partner event publishes it under its own id and stores its deliveries and inbox item under ids
    derived from it; the directory is a versioned projection: a repeat of these is a no-op with no processed log.
    """
    routes = EventRouter()
    routes.on(PARTNER_PAYLOADS, service.forward, self_deduplicating=True)
    routes.on(PartnerUpserted, lambda e, env: service.partner_changed(e), self_deduplicating=True)
    routes.on(EnterpriseUpserted, lambda e, env: service.enterprise_changed(e), self_deduplicating=True)
    routes.on(RedeliveryRequested, lambda e, env: service.redeliver(e))
    if emails_enterprises:
        routes.on(ReferralSubmitted, service.referral_submitted)
        routes.on(ReferralAccepted, service.referral_accepted)
        for told in (ReferralOffered, ReferralUnmatched, ReferralCompleted):
            routes.on(told, lambda e, env: service.tell_enterprise(env))
    return routes


def _told(event: PartnerEvent, envelope: Envelope) -> tuple[PartnerEvent, Envelope]:
    return event, envelope


PARTNER_EVENT: PayloadDispatch[Envelope, tuple[PartnerEvent, Envelope]] = PayloadDispatch()
for _payload in PARTNER_PAYLOADS:
    PARTNER_EVENT.on(_payload, _told)


@dataclass(frozen=True)
class ForwardBatch:
    """A poll's partner events forwarded at once (`NotificationService.forward_many`): the batch form of the
    router's `forward`, with the same effects in fewer round trips."""

    service: NotificationService
    types: frozenset[str] = PARTNER_EVENT.types

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        """Those held back (their partner not in the directory yet) go to the ordinary handler, which retries."""
        told = [PARTNER_EVENT(envelope.data, envelope) for envelope in envelopes]
        held = set(await self.service.forward_many(told))
        return [PartnerNotKnownYet(event.partner_id) if e.id in held else None for event, e in told]
