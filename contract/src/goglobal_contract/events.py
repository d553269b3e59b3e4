"""The event contract: typed payloads and the CloudEvents `type` each one travels under.

Additive changes keep a type's `v1`; a breaking change gets a new `v2` type.
"""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from goglobal_contract.enums import BudgetBand, DeclineReason, OfferStrategy, Outcome, ServiceCategory, Urgency
from goglobal_contract.event_base import TYPE_PREFIX, EventPayload
from goglobal_contract.identifiers import LanguageTag, MarketCode


class NeedDetails(BaseModel):
    """One need of a service request: what the referral is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service_category: ServiceCategory
    target_markets: list[MarketCode] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=5000)
    urgency: Urgency = Urgency.NORMAL
    budget_band: BudgetBand = BudgetBand.UNDISCLOSED
    languages: list[LanguageTag] = Field(default_factory=list, max_length=5)
    offer_strategy: OfferStrategy | None = None
    parallel_offers: int | None = Field(default=None, ge=2, le=10)
    excluded_partners: list[str] = Field(default_factory=list, max_length=50)


class SubmittedNeed(BaseModel):
    """One need of the request and the referral it became."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    referral_id: str
    need: NeedDetails


class ReferralSubmitted(EventPayload):
    """A need of a service request became a referral. Carries no contact details of the enterprise."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.submitted.v1"

    referral_id: str
    request_id: str
    enterprise_id: str
    enterprise_name: str = Field(min_length=1, max_length=200)
    enterprise_sector: str | None = None
    enterprise_languages: list[LanguageTag] = Field(default_factory=list)
    need: NeedDetails
    submitted_at: datetime
    request_needs: list[SubmittedNeed] = Field(
        default_factory=list,
        max_length=10,
        description="On the request's first referral only: every need of the request with its referral, for the "
        "enterprise's acknowledgement (one e-mail per request). Empty on the others.",
    )


class Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    partner_id: str
    partner_name: str
    score: float = Field(ge=0.0, le=1.0)
    reasons: list[str]


class ReferralMatched(EventPayload):
    """Matching ranked the partners that fit; `candidates` is best first."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.matched.v1"

    referral_id: str
    candidates: list[Candidate] = Field(min_length=1)
    matched_at: datetime


class ReferralUnmatched(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.unmatched.v1"

    referral_id: str
    reason: str
    unmatched_at: datetime


class ReferralOffered(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.offered.v1"

    referral_id: str
    partner_id: str
    partner_name: str
    offered_at: datetime
    respond_by: datetime
    round: int = Field(ge=1)


class ReferralExpired(EventPayload):
    """A partner let its offer's response window pass; matching offers the next candidate."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.expired.v1"

    referral_id: str
    partner_id: str
    offered_at: datetime
    expired_at: datetime


class OfferWithdrawalReason(StrEnum):
    ACCEPTED_ELSEWHERE = "accepted_elsewhere"
    WITHDRAWN_BY_ENTERPRISE = "withdrawn_by_enterprise"
    CLOSED_BY_OPERATOR = "closed_by_operator"


class ReferralOfferWithdrawn(EventPayload):
    """An open offer was taken back: another partner accepted first, or the referral ended."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.offer_withdrawn.v1"

    referral_id: str
    partner_id: str
    reason: OfferWithdrawalReason
    withdrawn_at: datetime


class ReferralAccepted(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.accepted.v1"

    referral_id: str
    partner_id: str
    accepted_at: datetime


class ReferralDeclined(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.declined.v1"

    referral_id: str
    partner_id: str
    reason: DeclineReason
    text: str = ""
    declined_at: datetime


class ReferralStarted(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.started.v1"

    referral_id: str
    partner_id: str
    started_at: datetime


class ReferralCompleted(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.completed.v1"

    referral_id: str
    partner_id: str
    outcome: Outcome
    notes: str
    completed_at: datetime


class ReferralRated(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.rated.v1"

    referral_id: str
    partner_id: str
    score: int = Field(ge=1, le=5)
    comment: str = ""
    rated_at: datetime


class ReferralWithdrawn(EventPayload):
    """The enterprise withdrew the need; open offers are cancelled."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.withdrawn.v1"

    referral_id: str
    partner_id: str | None = None
    withdrawn_at: datetime


class ReferralClosed(EventPayload):
    """An operator closed the referral."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.closed.v1"

    referral_id: str
    partner_id: str | None = None
    reason: str
    closed_at: datetime


class ReferralAssigned(EventPayload):
    """An operator chose the partner for an unmatched referral; matching offers it to them."""

    event_type: ClassVar[str] = TYPE_PREFIX + "referral.assigned.v1"

    referral_id: str
    partner_id: str
    assigned_at: datetime


class PartnerCategoryDetails(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    category: ServiceCategory
    specialties: list[str] = Field(default_factory=list)


class PartnerUpserted(EventPayload):
    """The directory's current view of a partner (created, changed or deactivated), with where to reach it.
    Webhook secrets never travel: both intake and notifications derive them from `webhook_secret_generation`."""

    event_type: ClassVar[str] = TYPE_PREFIX + "directory.partner_upserted.v1"

    partner_id: str
    name: str
    categories: list[PartnerCategoryDetails]
    markets: list[MarketCode]
    sectors: list[str] = Field(default_factory=list)
    languages: list[LanguageTag] = Field(default_factory=list)
    capacity: int = Field(ge=1)
    response_window_hours: int = Field(ge=1)
    offer_strategy: OfferStrategy
    parallel_offers: int = Field(ge=1)
    active: bool
    contact_email: str | None = None
    delivery_email: str | None = None
    webhook_url: str | None = None
    webhook_secret_generation: int = Field(default=1, ge=1)
    previous_secret_valid_until: datetime | None = Field(
        default=None, description="until then, webhooks are signed with the previous secret as well"
    )
    version: int = Field(ge=1, description="increases with every change; consumers keep the highest")
    updated_at: datetime


class ContactDetails(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    email: str
    phone: str


class EnterpriseUpserted(EventPayload):
    """The enterprise's profile after registration or a change (topic `goglobal.enterprises`, key its id)."""

    event_type: ClassVar[str] = TYPE_PREFIX + "directory.enterprise_upserted.v1"

    enterprise_id: str
    legal_name_zh: str
    legal_name_en: str
    sector: str
    size_band: str
    hq_province: str
    hq_city: str
    contact: ContactDetails
    share_contact_with_accepted_partners: bool
    receive_email: bool
    preferred_languages: list[LanguageTag]
    version: int = Field(ge=1)
    updated_at: datetime


class ApiKeyRevoked(EventPayload):
    """An API key was revoked. Every intake replica reads these (no consumer group) and forgets the key at once
    instead of trusting its cached verification until it expires. Carries no secret, not even its hash."""

    event_type: ClassVar[str] = TYPE_PREFIX + "directory.api_key_revoked.v1"

    key_id: str = Field(pattern=r"^[a-z0-9]{16}$")
    revoked_at: datetime
