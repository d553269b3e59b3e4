"""Turns what a recipient must be told into the records and deliveries that tell it: the partner's own topic,
the inbox (through `notification.created`), a signed webhook, an e-mail. Every id is derived from the cause,
so handling a cause twice creates nothing twice."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from goglobal_contract.envelope import Envelope, to_structured_json
from goglobal_contract.event_base import EventPayload
from goglobal_contract.notification_events import NotificationCreated, RecipientType
from notifications.adapters.deliveries import LEASE, PENDING, DeliveryRepository
from notifications.adapters.directory import Directory
from notifications.email.render import choose_language
from notifications.fanout import SOURCE, EnterpriseMessage, PartnerMessage, derived_id
from notifications.handoff import Handoff

PublishTo = Callable[[str, Envelope], Awaitable[None]]  # topic, envelope


@dataclass
class Notifier:
    directory: Directory
    deliveries: DeliveryRepository
    publish_partner: Callable[[str, Envelope], Awaitable[None]]  # partner id, envelope
    publish_notification: Callable[[Envelope], Awaitable[None]]
    portal_url: str
    clock: Callable[[], datetime]
    handoff: Handoff
    # Without an SMTP server nothing could be sent: a delivery per e-mail would only fail, cost a database write
    # and an outcome event each, and crowd the delivery logs.
    email_enabled: bool = True

    async def to_partner(self, message: PartnerMessage) -> None:
        envelope, partner_id = message.envelope, message.partner_id
        # Side by side: the partner topic's and the inbox's acknowledgements and the directory read do not depend
        # on each other; the handler returns (and the offset is committed) only once all three are done.
        _, _, partner = await asyncio.gather(
            self.publish_partner(partner_id, envelope),
            self._inbox(
                RecipientType.PARTNER,
                partner_id,
                envelope.subject,
                envelope.id,
                message.kind,
                _title(message.kind, envelope.subject),
                _body(envelope.data),
            ),
            self.directory.partner(partner_id),
        )
        if partner is None:
            return
        if partner.get("webhook_url"):
            await self._webhook(partner, envelope)
        address = partner.get("delivery_email") or partner.get("contact_email")
        if address:
            context = {
                **envelope.data.model_dump(mode="json"),
                "partner_name": partner["name"],
                "portal_url": self.portal_url,
            }
            await self._email(
                RecipientType.PARTNER,
                partner_id,
                address,
                message.kind,
                choose_language(partner.get("languages", [])),
                context,
                envelope,
            )

    async def to_enterprise(self, message: EnterpriseMessage, cause: Envelope) -> None:
        enterprise = await self.directory.enterprise(message.enterprise_id)
        if enterprise is None or not enterprise["receive_email"]:
            return
        context = {**message.context, "portal_url": self.portal_url}
        await self._email(
            RecipientType.ENTERPRISE,
            message.enterprise_id,
            enterprise["contact"]["email"],
            message.kind,
            choose_language(enterprise["preferred_languages"]),
            context,
            cause,
            delivery_id=derived_id(message.dedupe_key, message.enterprise_id, "email"),
        )

    async def email_partner(self, partner_id: str, kind: str, context: dict[str, Any], cause: Envelope) -> None:
        """An e-mail to a partner that is not one of its partner events (e.g. its endpoint was disabled)."""
        partner = await self.directory.partner(partner_id)
        address = (partner.get("delivery_email") or partner.get("contact_email")) if partner else None
        if partner is not None and address:
            context = {**context, "partner_name": partner["name"], "portal_url": self.portal_url}
            language = choose_language(partner.get("languages", []))
            await self._email(RecipientType.PARTNER, partner_id, address, kind, language, context, cause)

    async def notice(
        self, recipient_type: RecipientType, recipient_id: str, kind: str, title: str, body: str, cause_id: str
    ) -> None:
        """An inbox item that is not about one referral (e.g. an endpoint was disabled)."""
        await self._inbox(
            recipient_type, recipient_id, None, derived_id(cause_id, recipient_id, kind), kind, title, body
        )

    async def _inbox(
        self,
        recipient_type: RecipientType,
        recipient_id: str,
        referral_id: str | None,
        notification_id: str,
        kind: str,
        title: str,
        body: str,
    ) -> None:
        created = NotificationCreated(
            notification_id=notification_id,
            recipient_type=recipient_type,
            recipient_id=recipient_id,
            referral_id=referral_id,
            kind=kind,
            title=title,
            body=body,
            created_at=self.clock(),
        )
        await self.publish_notification(
            Envelope.wrap(
                created,
                source=SOURCE,
                subject=recipient_id,
                event_id=derived_id(notification_id, recipient_id, "inbox"),
            )
        )

    async def _webhook(self, partner: dict[str, Any], envelope: Envelope) -> None:
        """Always pending: the dispatcher looks at the endpoint's health when it attempts the delivery (and holds it
        as `disabled` if the endpoint is), so it is not read here as well. Created claimed by this process and
        handed to its dispatcher, to go out at once (notifications.handoff); a repeat creates nothing."""
        delivery = self._delivery(
            f"{envelope.id}:webhook",
            "webhook",
            RecipientType.PARTNER,
            partner["_id"],
            partner["webhook_url"],
            envelope,
            PENDING,
            body=to_structured_json(envelope).decode(),
        )
        claimed = {**delivery, "next_attempt_at": delivery["created_at"] + LEASE, "version": 1}
        if await self.deliveries.create(claimed):
            self.handoff.put(claimed, partner)

    async def _email(
        self,
        recipient_type: RecipientType,
        recipient_id: str,
        address: str,
        kind: str,
        language: str,
        context: dict[str, Any],
        cause: Envelope,
        delivery_id: str | None = None,
    ) -> None:
        if not self.email_enabled:
            return
        created = await self.deliveries.create(
            self._delivery(
                delivery_id or f"{cause.id}:email",
                "email",
                recipient_type,
                recipient_id,
                address,
                cause,
                PENDING,
                kind=kind,
                language=language,
                context=context,
            )
        )
        if created:
            self.handoff.wake()  # the dispatcher's query for due deliveries finds it at once

    def _delivery(
        self,
        delivery_id: str,
        channel: str,
        recipient_type: RecipientType,
        recipient_id: str,
        target: str,
        envelope: Envelope,
        status: str,
        **content: Any,
    ) -> dict[str, Any]:
        now = self.clock()
        return {
            "_id": delivery_id,
            "channel": channel,
            "recipient_type": recipient_type.value,
            "recipient_id": recipient_id,
            "target": target,
            "event_id": envelope.id,
            "delivered_type": envelope.type,
            "referral_id": envelope.subject,
            "status": status,
            "attempts": [],
            "next_attempt_at": now if status == PENDING else None,
            "created_at": now,
            "updated_at": now,
            "traceparent": envelope.traceparent,
            **content,
        }


def _title(kind: str, referral_id: str) -> str:
    return f"{kind.replace('_', ' ').capitalize()}: referral {referral_id}"


def _body(payload: EventPayload) -> str:
    data = payload.model_dump(mode="json")
    return "; ".join(f"{k}: {v}" for k, v in data.items() if k != "referral_id" and not isinstance(v, dict | list))
