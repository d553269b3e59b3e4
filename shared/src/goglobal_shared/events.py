"""The event contract: typed payloads and the CloudEvents `type` each one travels under.

Additive changes keep a type's `v1`; a breaking change gets a new `v2` type.
"""

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.markets import is_market

TYPE_PREFIX = "hk.goglobal."


def _market(code: str) -> str:
    if not is_market(code):
        raise ValueError(f"{code!r} is neither an ISO 3166-1 alpha-2 country code nor a known region")
    return code


MarketCode = Annotated[str, AfterValidator(_market), Field(examples=["AE", "MIDDLE_EAST"])]


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]


class ReferralSubmitted(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.submitted.v1"

    referral_id: str
    enterprise_name: str = Field(min_length=1, max_length=200)
    service_category: ServiceCategory
    target_markets: list[MarketCode] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=5000)
    submitted_at: datetime


class ReferralMatched(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.matched.v1"

    referral_id: str
    partner_id: str
    partner_name: str
    score: float = Field(ge=0.0, le=1.0)
    reasons: list[str]
    matched_at: datetime


class ReferralUnmatched(EventPayload):
    event_type: ClassVar[str] = TYPE_PREFIX + "referral.unmatched.v1"

    referral_id: str
    reason: str
    unmatched_at: datetime


PAYLOADS: dict[str, type[EventPayload]] = {
    cls.event_type: cls for cls in (ReferralSubmitted, ReferralMatched, ReferralUnmatched)
}
