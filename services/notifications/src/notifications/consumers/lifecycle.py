"""What notifications does with each event it consumes: forward the partner events intake recorded, e-mail
enterprises about their referrals, keep its projections, and act on redelivery requests. Every step is
idempotent (derived ids, versioned projections)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from goglobal_shared.consumer import Handler
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import (
    EnterpriseUpserted,
    PartnerUpserted,
    ReferralAccepted,
    ReferralCompleted,
    ReferralOffered,
    ReferralSubmitted,
    ReferralUnmatched,
)
from goglobal_shared.notification_events import RedeliveryRequested
from goglobal_shared.partner_events import PARTNER_PAYLOADS
from notifications.adapters.deliveries import DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.adapters.referrals import ReferralProjection
from notifications.endpoints import EndpointHealth
from notifications.fanout import enterprise_messages, partner_message
from notifications.notifier import Notifier

# Forwarding a partner event publishes it under its own id and stores its deliveries and inbox item under ids
# derived from it; the directory is a versioned projection: a repeat is a no-op with no log.
SELF_DEDUPLICATING = frozenset(
    [*(t.event_type for t in PARTNER_PAYLOADS), PartnerUpserted.event_type, EnterpriseUpserted.event_type]
)

# Lifecycle events that e-mail the enterprise or keep the referral projection those e-mails need.
FOR_ENTERPRISES = (ReferralSubmitted, ReferralOffered, ReferralAccepted, ReferralUnmatched, ReferralCompleted)


@dataclass
class Lifecycle:
    directory: Directory
    referrals: ReferralProjection
    deliveries: DeliveryRepository
    endpoints: EndpointHealth
    notifier: Notifier
    clock: Callable[[], datetime]
    wake_dispatcher: Callable[[], None]

    async def referral_event(self, envelope: Envelope) -> None:
        event = envelope.data
        if isinstance(event, ReferralSubmitted):
            await self.referrals.submitted(event)
        elif isinstance(event, ReferralAccepted):
            await self.referrals.accepted(event.referral_id, event.partner_id)
        referral = await self.referrals.get(envelope.subject)
        enterprise = await self.directory.enterprise(referral.enterprise_id) if referral else None
        partner_name = await self._accepting_partner_name(referral.accepted_by if referral else None)
        for note in enterprise_messages(envelope, referral, enterprise, partner_name):
            await self.notifier.to_enterprise(note, envelope)

    async def partner_event(self, envelope: Envelope) -> None:
        """What intake recorded for a partner goes out on every channel the partner has."""
        await self.notifier.to_partner(partner_message(envelope))

    async def _accepting_partner_name(self, partner_id: str | None) -> str | None:
        partner = await self.directory.partner(partner_id) if partner_id else None
        return partner["name"] if partner else None

    async def partner_upserted(self, envelope: Envelope) -> None:
        assert isinstance(envelope.data, PartnerUpserted)
        await self.directory.apply_partner(envelope.data)

    async def enterprise_upserted(self, envelope: Envelope) -> None:
        assert isinstance(envelope.data, EnterpriseUpserted)
        await self.directory.apply_enterprise(envelope.data)

    async def redelivery(self, envelope: Envelope) -> None:
        """Operators or a partner asked to deliver again; a disabled endpoint is enabled for it."""
        asked = envelope.data
        assert isinstance(asked, RedeliveryRequested)
        query: dict[str, object] = {}
        if asked.delivery_ids:
            query["_id"] = {"$in": asked.delivery_ids}
        if asked.partner_id:
            query["recipient_id"] = asked.partner_id
            await self.endpoints.enable(asked.partner_id)
        else:
            await self.endpoints.enable_all()
        if asked.failed_since:
            query["updated_at"] = {"$gte": asked.failed_since}
        await self.deliveries.reschedule(query, self.clock())
        self.wake_dispatcher()


def handlers(lifecycle: Lifecycle, emails_enterprises: bool = True) -> dict[str, Handler]:
    """Without e-mail, the lifecycle events that only e-mail enterprises are not consumed at all."""
    routes: dict[str, Handler] = {t.event_type: lifecycle.partner_event for t in PARTNER_PAYLOADS}
    if emails_enterprises:
        routes.update({t.event_type: lifecycle.referral_event for t in FOR_ENTERPRISES})
    routes[PartnerUpserted.event_type] = lifecycle.partner_upserted
    routes[EnterpriseUpserted.event_type] = lifecycle.enterprise_upserted
    routes[RedeliveryRequested.event_type] = lifecycle.redelivery
    return routes
