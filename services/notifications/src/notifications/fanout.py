"""Who hears about a lifecycle event, and what each recipient is told. Pure.

Partners get the partner events intake wrote when it recorded each change (their topic, webhook, e-mail,
inbox): notifications forwards them and never builds them, so nothing a partner hears comes from a projection
that may lag behind intake. Enterprises get e-mails (with consent)."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from goglobal_shared.envelope import Envelope
from goglobal_shared.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralOffered,
    ReferralSubmitted,
    ReferralUnmatched,
)
from goglobal_shared.partner_events import PartnerEvent

SOURCE = "/goglobal/notifications"
_IDS = uuid.UUID("6f1d2c1e-8c53-4c8e-9a7f-1f4f6a0d2b11")


@dataclass(frozen=True)
class Referral:
    """What notifications remembers of a referral (from its `submitted` event, and who accepted it)."""

    referral_id: str
    request_id: str
    enterprise_id: str
    need: dict[str, Any]
    accepted_by: str | None = None


@dataclass(frozen=True)
class PartnerMessage:
    partner_id: str
    envelope: Envelope

    @property
    def kind(self) -> str:
        return self.envelope.type.removeprefix("hk.goglobal.partner.").removesuffix(".v1")


@dataclass(frozen=True)
class EnterpriseMessage:
    enterprise_id: str
    kind: str
    dedupe_key: str  # one e-mail per key, however often the cause is redelivered
    context: dict[str, Any] = field(default_factory=dict)


def derived_id(source_event_id: str, recipient: str, kind: str) -> str:
    """The same cause always yields the same id, so a redelivered cause is deduped downstream."""
    return str(uuid.uuid5(_IDS, f"{source_event_id}:{recipient}:{kind}"))


def partner_message(envelope: Envelope) -> PartnerMessage:
    """A partner event intake recorded, forwarded unchanged (same id, so the partner dedupes redeliveries)."""
    payload = envelope.data
    if not isinstance(payload, PartnerEvent):
        raise TypeError(f"{envelope.type} is not a partner event")
    return PartnerMessage(payload.partner_id, envelope)


def enterprise_messages(
    cause: Envelope, referral: Referral | None, enterprise: dict[str, Any] | None, partner_name: str | None
) -> list[EnterpriseMessage]:
    """E-mails to the enterprise, only with its consent to receive them."""
    if enterprise is None or not enterprise["receive_email"]:
        return []
    event, eid = cause.data, enterprise["enterprise_id"]
    base = {"referral_id": cause.subject, "enterprise_name": enterprise["legal_name_en"]}
    if isinstance(event, ReferralSubmitted):
        # One e-mail per request, listing its needs, whichever of its referrals comes first.
        return [
            EnterpriseMessage(
                eid,
                "request_received",
                f"request_received:{event.request_id}",
                {**base, "request_id": event.request_id},
            )
        ]
    if isinstance(event, ReferralOffered) and event.round == 1:
        need = referral.need if referral else {}
        return [
            EnterpriseMessage(eid, "referral_offered_enterprise", f"offered:{cause.subject}", {**base, "need": need})
        ]
    if isinstance(event, ReferralAccepted):
        return [
            EnterpriseMessage(
                eid,
                "referral_accepted_enterprise",
                f"accepted:{cause.id}",
                {**base, "partner_name": partner_name or event.partner_id},
            )
        ]
    if isinstance(event, ReferralUnmatched):
        return [
            EnterpriseMessage(
                eid, "referral_unmatched_enterprise", f"unmatched:{cause.id}", {**base, "reason": event.reason}
            )
        ]
    if isinstance(event, ReferralCompleted):
        return [
            EnterpriseMessage(
                eid,
                "referral_completed_enterprise",
                f"completed:{cause.id}",
                {**base, "outcome": event.outcome.value, "partner_name": partner_name},
            )
        ]
    return []
