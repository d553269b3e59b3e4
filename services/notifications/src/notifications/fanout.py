"""Who hears about a lifecycle event, and what each recipient is told. Pure.

Partners get partner-facing events (their topic, webhook, e-mail, inbox); enterprises get e-mails (with
consent). A partner learns the enterprise's identity only in the acceptance confirmation, and its contact
details only if the enterprise consented."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from goglobal_shared.envelope import Envelope
from goglobal_shared.event_base import EventPayload
from goglobal_shared.events import (
    ContactDetails,
    ReferralAccepted,
    ReferralClosed,
    ReferralCompleted,
    ReferralExpired,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralRated,
    ReferralSubmitted,
    ReferralUnmatched,
    ReferralWithdrawn,
)
from goglobal_shared.partner_events import (
    EnterpriseIdentity,
    EnterpriseProfileSummary,
    NeedSummary,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)

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


def _message(cause: Envelope, partner_id: str, payload: EventPayload) -> PartnerMessage:
    kind = payload.event_type
    envelope = Envelope.wrap(
        payload, source=SOURCE, subject=cause.subject, event_id=derived_id(cause.id, partner_id, kind)
    )
    return PartnerMessage(partner_id, envelope)


def _need(referral: Referral) -> NeedSummary:
    return NeedSummary.model_validate({k: v for k, v in referral.need.items() if k in NeedSummary.model_fields})


def _summary(enterprise: dict[str, Any] | None) -> EnterpriseProfileSummary:
    if enterprise is None:
        return EnterpriseProfileSummary()
    return EnterpriseProfileSummary(
        sector=enterprise["sector"],
        size_band=enterprise["size_band"],
        hq_province=enterprise["hq_province"],
        preferred_languages=enterprise["preferred_languages"],
    )


def _identity(enterprise: dict[str, Any]) -> EnterpriseIdentity:
    consented = enterprise["share_contact_with_accepted_partners"]
    return EnterpriseIdentity(
        enterprise_id=enterprise["enterprise_id"],
        legal_name_zh=enterprise["legal_name_zh"],
        legal_name_en=enterprise["legal_name_en"],
        hq_province=enterprise["hq_province"],
        hq_city=enterprise["hq_city"],
        contact=ContactDetails.model_validate(enterprise["contact"]) if consented else None,
    )


def partner_messages(
    cause: Envelope, referral: Referral | None, enterprise: dict[str, Any] | None
) -> list[PartnerMessage]:
    event, rid = cause.data, cause.subject
    if isinstance(event, ReferralOffered) and referral is not None:
        payload: EventPayload = ReferralOfferedToPartner(
            referral_id=rid,
            need=_need(referral),
            enterprise=_summary(enterprise),
            offered_at=event.offered_at,
            respond_by=event.respond_by,
            round=event.round,
        )
        return [_message(cause, event.partner_id, payload)]
    if isinstance(event, ReferralOfferWithdrawn):
        payload = OfferWithdrawnFromPartner(referral_id=rid, reason=event.reason, withdrawn_at=event.withdrawn_at)
        return [_message(cause, event.partner_id, payload)]
    if isinstance(event, ReferralExpired):
        payload = OfferExpiredForPartner(referral_id=rid, offered_at=event.offered_at, expired_at=event.expired_at)
        return [_message(cause, event.partner_id, payload)]
    if isinstance(event, ReferralAccepted) and enterprise is not None:
        payload = ReferralAcceptedByPartner(
            referral_id=rid, accepted_at=event.accepted_at, enterprise=_identity(enterprise)
        )
        return [_message(cause, event.partner_id, payload)]
    return _after_acceptance(cause, referral)


def _after_acceptance(cause: Envelope, referral: Referral | None) -> list[PartnerMessage]:
    """Withdrawal, closure and rating concern the partner that accepted (open offers hear of it from matching)."""
    event, rid = cause.data, cause.subject
    partner = referral.accepted_by if referral else None
    if partner is None:
        return []
    if isinstance(event, ReferralWithdrawn):
        return [
            _message(cause, partner, ReferralWithdrawnByEnterprise(referral_id=rid, withdrawn_at=event.withdrawn_at))
        ]
    if isinstance(event, ReferralClosed):
        return [
            _message(
                cause,
                partner,
                ReferralClosedByOperator(referral_id=rid, reason=event.reason, closed_at=event.closed_at),
            )
        ]
    if isinstance(event, ReferralRated):
        return [
            _message(
                cause,
                partner,
                ReferralRatedByEnterprise(
                    referral_id=rid, score=event.score, comment=event.comment, rated_at=event.rated_at
                ),
            )
        ]
    return []


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
