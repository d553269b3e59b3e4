"""On `referral.matched`: record a notification for the chosen partner (delivery channels come later)."""

from datetime import datetime

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralMatched
from notifications.adapters.notification_repository import NotificationRepository


async def on_matched(envelope: Envelope, notifications: NotificationRepository, now: datetime) -> None:
    matched = envelope.data
    assert isinstance(matched, ReferralMatched)
    await notifications.add(
        {
            "_id": f"{envelope.id}:{matched.partner_id}",
            "event_id": envelope.id,
            "event_type": envelope.type,
            "referral_id": matched.referral_id,
            "recipient_type": "partner",
            "recipient_id": matched.partner_id,
            "subject": f"New referral {matched.referral_id} matched to {matched.partner_name}",
            "created_at": now,
            "read": False,
        }
    )
