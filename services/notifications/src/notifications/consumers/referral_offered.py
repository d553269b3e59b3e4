"""On `referral.offered`: record a notification for the partner (delivery channels come later)."""

from datetime import datetime

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ReferralOffered
from notifications.adapters.notification_repository import NotificationRepository


async def on_offered(envelope: Envelope, notifications: NotificationRepository, now: datetime) -> None:
    offered = envelope.data
    assert isinstance(offered, ReferralOffered)
    await notifications.add(
        {
            "_id": f"{envelope.id}:{offered.partner_id}",
            "event_id": envelope.id,
            "event_type": envelope.type,
            "referral_id": offered.referral_id,
            "recipient_type": "partner",
            "recipient_id": offered.partner_id,
            "subject": f"New referral {offered.referral_id} offered to {offered.partner_name}; "
            f"please answer by {offered.respond_by:%Y-%m-%d %H:%M} UTC",
            "created_at": now,
            "read": False,
        }
    )
