"""What a partner organisation receives, on its own topic `goglobal.partner.<partner-id>` and by webhook.

These payloads are the public contract with partners' systems. Before a partner accepts a referral it
learns the need and a profile of the enterprise without names or contact details; after it accepted, the
acceptance confirmation names the enterprise, and carries its contact details only if the enterprise
consented to share them.

Intake, the system of record, writes each of these in the same document write that records the change it tells
of (an offer, an acceptance, a withdrawal...), from the state it holds at that moment: a partner never hears
of an offer intake does not know yet, and a consent withdrawn before an acceptance keeps the contact out of
every channel. They travel on `goglobal.referrals` (key: the referral id), and notifications forwards each one
unchanged to the partner named in `partner_id`: its topic, webhook, inbox and e-mail.
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from goglobal_contract.enums import BudgetBand, ServiceCategory, Urgency
from goglobal_contract.event_base import TYPE_PREFIX, EventPayload
from goglobal_contract.events import ContactDetails, OfferWithdrawalReason
from goglobal_contract.identifiers import PartnerId

PARTNER_PREFIX = TYPE_PREFIX + "partner."


class NeedSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    service_category: ServiceCategory
    target_markets: list[str]
    description: str = ""
    urgency: Urgency = Urgency.NORMAL
    budget_band: BudgetBand = BudgetBand.UNDISCLOSED
    languages: list[str] = Field(default_factory=list)


class EnterpriseProfileSummary(BaseModel):
    """Enough to judge fit, not enough to identify the company."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sector: str | None = None
    size_band: str | None = None
    hq_province: str | None = None
    preferred_languages: list[str] = Field(default_factory=list)


class EnterpriseIdentity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    enterprise_id: str
    legal_name_zh: str
    legal_name_en: str
    hq_province: str
    hq_city: str
    contact: ContactDetails | None = Field(description="present only if the enterprise consented to share it")


class PartnerEvent(EventPayload):
    """Every partner event names the partner it is for: the recipient, i.e. you."""

    partner_id: PartnerId = Field(description="the partner this event is for")


class ReferralOfferedToPartner(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "referral_offered.v1"

    referral_id: str
    need: NeedSummary
    enterprise: EnterpriseProfileSummary
    offered_at: datetime
    respond_by: datetime
    round: int = Field(ge=1)


class OfferWithdrawnFromPartner(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "offer_withdrawn.v1"

    referral_id: str
    reason: OfferWithdrawalReason
    withdrawn_at: datetime


class OfferExpiredForPartner(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "offer_expired.v1"

    referral_id: str
    offered_at: datetime
    expired_at: datetime


class ReferralAcceptedByPartner(PartnerEvent):
    """Confirms the partner's acceptance and introduces the enterprise."""

    event_type: ClassVar[str] = PARTNER_PREFIX + "referral_accepted.v1"

    referral_id: str
    accepted_at: datetime
    enterprise: EnterpriseIdentity


class ReferralWithdrawnByEnterprise(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "referral_withdrawn.v1"

    referral_id: str
    withdrawn_at: datetime


class ReferralClosedByOperator(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "referral_closed.v1"

    referral_id: str
    reason: str
    closed_at: datetime


class ReferralRatedByEnterprise(PartnerEvent):
    event_type: ClassVar[str] = PARTNER_PREFIX + "referral_rated.v1"

    referral_id: str
    score: int = Field(ge=1, le=5)
    comment: str = ""
    rated_at: datetime


PARTNER_PAYLOADS: tuple[type[PartnerEvent], ...] = (
    ReferralOfferedToPartner, OfferWithdrawnFromPartner, OfferExpiredForPartner, ReferralAcceptedByPartner,
    ReferralWithdrawnByEnterprise, ReferralClosedByOperator, ReferralRatedByEnterprise,
)  # fmt: skip


def partner_topic(prefix: str, partner_id: str) -> str:
    return f"{prefix}goglobal.partner.{partner_id}"
