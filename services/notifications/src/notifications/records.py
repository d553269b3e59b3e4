"""What notifications writes down to tell a recipient: a delivery (one per message, channel and recipient, with
its schedule and attempts) and an inbox item (`notification.created`). Pure.

Every id is derived from the cause, so handling a cause twice creates nothing twice. A delivery created to go out
at once is created claimed (its next attempt a lease ahead, as a dispatcher's claim makes it): if its attempt
never happens, it is due again when the lease ends."""

from datetime import datetime, timedelta
from typing import Any

from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.notification_events import NotificationCreated, RecipientType
from notifications.fanout import SOURCE, derived_id

Document = dict[str, Any]  # a record as the store holds it (goglobal_shared.mongo.Document, with no driver)
PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"
LEASE = timedelta(minutes=2)  # longer than any attempt (webhook timeouts are at most 60 s)


def new_delivery(
    delivery_id: str,
    channel: str,
    recipient_type: RecipientType,
    recipient_id: str,
    target: str,
    cause: Envelope,
    now: datetime,
    **content: Any,
) -> Document:
    """Pending and due now."""
    return {
        "_id": delivery_id,
        "channel": channel,
        "recipient_type": recipient_type.value,
        "recipient_id": recipient_id,
        "target": target,
        "event_id": cause.id,
        "delivered_type": cause.type,
        "referral_id": cause.subject,
        "status": PENDING,
        "attempts": [],
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
        "traceparent": cause.traceparent,
        **content,
    }


def claimed(delivery: Document) -> Document:
    """The delivery as this process's dispatcher holds it: nobody else attempts it before the lease ends."""
    return {**delivery, "next_attempt_at": delivery["created_at"] + LEASE, "version": 1}


def inbox_item(
    recipient_type: RecipientType,
    recipient_id: str,
    referral_id: str | None,
    notification_id: str,
    kind: str,
    title: str,
    body: str,
    now: datetime,
) -> Envelope:
    created = NotificationCreated(
        notification_id=notification_id,
        recipient_type=recipient_type,
        recipient_id=recipient_id,
        referral_id=referral_id,
        kind=kind,
        title=title,
        body=body,
        created_at=now,
    )
    event_id = derived_id(notification_id, recipient_id, "inbox")
    return Envelope.wrap(created, source=SOURCE, subject=recipient_id, event_id=event_id)


def partner_kind(envelope: Envelope) -> str:
    """A partner event's kind, e.g. `referral_offered`: its e-mail template and inbox kind."""
    return envelope.type.removeprefix("hk.goglobal.partner.").removesuffix(".v1")


def title(kind: str, referral_id: str) -> str:
    return f"{kind.replace('_', ' ').capitalize()}: referral {referral_id}"


def body(payload: EventPayload) -> str:
    data = payload.model_dump(mode="json")
    return "; ".join(f"{k}: {v}" for k, v in data.items() if k != "referral_id" and not isinstance(v, dict | list))
