"""Who hears about a lifecycle event, and what each recipient is told. Pure.

Partners get the partner events intake wrote when it recorded each change (their topic, webhook, e-mail,
inbox): notifications forwards them and never builds them, so nothing a partner hears comes from a projection
that may lag behind intake. Enterprises get e-mails (with consent)."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralOffered,
    ReferralSubmitted,
    ReferralUnmatched,
)
from goglobal_shared.router import PayloadDispatch

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
class EnterpriseMessage:
    enterprise_id: str
    kind: str
    dedupe_key: str  # one e-mail per key, however often the cause is redelivered
    context: dict[str, Any] = field(default_factory=dict)


def derived_id(source_event_id: str, recipient: str, kind: str) -> str:
    """The same cause always yields the same id, so a redelivered cause is deduped downstream."""
    return str(uuid.uuid5(_IDS, f"{source_event_id}:{recipient}:{kind}"))


@dataclass(frozen=True)
class Telling:
    """What an e-mail to the enterprise about `cause` is made of besides the event."""

    cause: Envelope
    enterprise_id: str
    base: dict[str, Any]  # the referral and the enterprise's name, in every e-mail
    referral: Referral | None
    partner_name: str | None


def _received(event: ReferralSubmitted, t: Telling) -> list[EnterpriseMessage]:
    """One e-mail per request, listing its needs: told by the request's first referral, which carries them all."""
    if not event.request_needs:
        return []
    needs = [{**n.need.model_dump(mode="json"), "referral_id": n.referral_id} for n in event.request_needs]
    context = {**t.base, "request_id": event.request_id, "needs": needs, "received_at": event.submitted_at.isoformat()}
    return [EnterpriseMessage(t.enterprise_id, "request_received", f"request_received:{event.request_id}", context)]


def _offered(event: ReferralOffered, t: Telling) -> list[EnterpriseMessage]:
    if event.round != 1:  # told once, when the first partners are offered the referral
        return []
    context = {**t.base, "need": t.referral.need if t.referral else {}}
    return [EnterpriseMessage(t.enterprise_id, "referral_offered_enterprise", f"offered:{t.cause.subject}", context)]


def _accepted(event: ReferralAccepted, t: Telling) -> list[EnterpriseMessage]:
    context = {**t.base, "partner_name": t.partner_name or event.partner_id}
    return [EnterpriseMessage(t.enterprise_id, "referral_accepted_enterprise", f"accepted:{t.cause.id}", context)]


def _unmatched(event: ReferralUnmatched, t: Telling) -> list[EnterpriseMessage]:
    context = {**t.base, "reason": event.reason}
    return [EnterpriseMessage(t.enterprise_id, "referral_unmatched_enterprise", f"unmatched:{t.cause.id}", context)]


def _completed(event: ReferralCompleted, t: Telling) -> list[EnterpriseMessage]:
    context = {**t.base, "outcome": event.outcome.value, "partner_name": t.partner_name}
    return [EnterpriseMessage(t.enterprise_id, "referral_completed_enterprise", f"completed:{t.cause.id}", context)]


ENTERPRISE_EMAILS: PayloadDispatch[Telling, list[EnterpriseMessage]] = PayloadDispatch()
ENTERPRISE_EMAILS.on(ReferralSubmitted, _received)
ENTERPRISE_EMAILS.on(ReferralOffered, _offered)
ENTERPRISE_EMAILS.on(ReferralAccepted, _accepted)
ENTERPRISE_EMAILS.on(ReferralUnmatched, _unmatched)
ENTERPRISE_EMAILS.on(ReferralCompleted, _completed)


def enterprise_messages(
    cause: Envelope, referral: Referral | None, enterprise: dict[str, Any], partner_name: str | None
) -> list[EnterpriseMessage]:
    """E-mails to the enterprise, only with its consent to receive them."""
    if not enterprise["receive_email"] or cause.type not in ENTERPRISE_EMAILS:
        return []
    eid = enterprise["enterprise_id"]
    base = {"referral_id": cause.subject, "enterprise_name": enterprise["legal_name_en"]}
    return ENTERPRISE_EMAILS(cause.data, Telling(cause, eid, base, referral, partner_name))
