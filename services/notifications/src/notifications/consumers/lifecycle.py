"""Notifications' consumer edge: each event it consumes, routed by payload class, calls one use case of
`notifications.service` (forward a partner event, e-mail an enterprise, keep a projection, redeliver)."""

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
from goglobal_contract.partner_events import PARTNER_PAYLOADS
from goglobal_shared.router import EventRouter
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
