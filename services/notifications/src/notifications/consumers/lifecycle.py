"""What notifications does with each event it consumes: forward the partner events intake recorded, e-mail
enterprises about their referrals, keep its projections, and act on redelivery requests. Every step is
idempotent (derived ids, versioned projections)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
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
from goglobal_shared.router import EventRouter
from notifications.adapters.deliveries import DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.adapters.referrals import ReferralProjection
from notifications.endpoints import EndpointHealth
from notifications.fanout import enterprise_messages, partner_message
from notifications.notifier import Notifier


@dataclass
class Lifecycle:
    directory: Directory
    referrals: ReferralProjection
    deliveries: DeliveryRepository
    endpoints: EndpointHealth
    notifier: Notifier
    clock: Callable[[], datetime]
    wake_dispatcher: Callable[[], None]

    async def submitted(self, event: ReferralSubmitted, envelope: Envelope) -> None:
        await self.referrals.submitted(event)
        await self.tell_enterprise(event, envelope)

    async def accepted(self, event: ReferralAccepted, envelope: Envelope) -> None:
        await self.referrals.accepted(event.referral_id, event.partner_id)
        await self.tell_enterprise(event, envelope)

    async def tell_enterprise(self, event: EventPayload, envelope: Envelope) -> None:
        """The e-mails a lifecycle event sends the enterprise (fanout.enterprise_messages decides which)."""
        referral = await self.referrals.get(envelope.subject)
        enterprise = await self.directory.enterprise(referral.enterprise_id) if referral else None
        partner_name = await self._accepting_partner_name(referral.accepted_by if referral else None)
        for note in enterprise_messages(envelope, referral, enterprise, partner_name):
            await self.notifier.to_enterprise(note, envelope)

    async def partner_event(self, event: PartnerEvent, envelope: Envelope) -> None:
        """What intake recorded for a partner goes out on every channel the partner has."""
        await self.notifier.to_partner(partner_message(event, envelope))

    async def _accepting_partner_name(self, partner_id: str | None) -> str | None:
        partner = await self.directory.partner(partner_id) if partner_id else None
        return partner["name"] if partner else None

    async def partner_upserted(self, event: PartnerUpserted, envelope: Envelope) -> None:
        await self.directory.apply_partner(event)

    async def enterprise_upserted(self, event: EnterpriseUpserted, envelope: Envelope) -> None:
        await self.directory.apply_enterprise(event)

    async def redelivery(self, asked: RedeliveryRequested, envelope: Envelope) -> None:
        """Operators or a partner asked to deliver again; a disabled endpoint is enabled for it."""
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


def router(lifecycle: Lifecycle, emails_enterprises: bool = True) -> EventRouter:
    """Without e-mail, the lifecycle events that only e-mail enterprises are not consumed at all.

    Forwarding a partner event publishes it under its own id and stores its deliveries and inbox item under ids
    derived from it; the directory is a versioned projection: a repeat of these is a no-op with no processed log.
    """
    routes = EventRouter()
    routes.on(PARTNER_PAYLOADS, lifecycle.partner_event, self_deduplicating=True)
    routes.on(PartnerUpserted, lifecycle.partner_upserted, self_deduplicating=True)
    routes.on(EnterpriseUpserted, lifecycle.enterprise_upserted, self_deduplicating=True)
    routes.on(RedeliveryRequested, lifecycle.redelivery)
    if emails_enterprises:
        routes.on(ReferralSubmitted, lifecycle.submitted)
        routes.on(ReferralAccepted, lifecycle.accepted)
        for told in (ReferralOffered, ReferralUnmatched, ReferralCompleted):
            routes.on(told, lifecycle.tell_enterprise)
    return routes
