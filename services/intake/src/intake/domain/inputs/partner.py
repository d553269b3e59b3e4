"""A Hong Kong partner organisation: what it offers, where, in which languages, and how it takes referrals."""

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_contract.identifiers import LanguageTag, MarketCode, PartnerId, reject_duplicates
from goglobal_contract.sectors import SectorCode
from goglobal_shared.webhook_targets import WHITESPACE_OR_CONTROL, has_whitespace_or_control
from intake.domain.inputs.enterprise import Contact

Specialty = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=80)]


class PartnerCategory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: ServiceCategory
    specialties: list[Specialty] = Field(default=[], max_length=20)


# Plain http is only tolerable where nothing crosses a network: a developer's own machine.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


def _https_only(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https" and url.host not in _LOCAL_HOSTS:
        raise ValueError("webhook_url must use https (plain http is accepted only for localhost and 127.0.0.1)")
    return url


def _as_written(url: object) -> object:
    """Refuses whitespace and control characters in the text as submitted: HttpUrl would drop tabs and line
    breaks and percent-encode spaces, so a header-injection attempt would be stored as a different, valid URL.
    Whitespace around the URL is trimmed first, as for every other field."""
    if isinstance(url, str):
        url = url.strip()
        if has_whitespace_or_control(url):
            raise ValueError(f"webhook_url {WHITESPACE_OR_CONTROL}")
    return url


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    webhook_url: Annotated[HttpUrl, BeforeValidator(_as_written), AfterValidator(_https_only)] | None = Field(
        default=None,
        description="Where referrals are delivered: an https URL (plain http only for localhost), without "
        "whitespace, control characters or credentials. Intake also refuses hosts inside the platform's network "
        "(loopback, private and link-local addresses) and URLs over 2048 characters.",
    )
    email: EmailStr | None = None


def _one_entry_per_category(categories: list[PartnerCategory]) -> list[PartnerCategory]:
    # Two entries for one category would leave matching to guess which specialties apply.
    seen: set[ServiceCategory] = set()
    for entry in categories:
        if entry.category in seen:
            raise ValueError(f"category '{entry.category}' is listed twice: give it one entry with all its specialties")
        seen.add(entry.category)
    return categories


_EXAMPLE_PARTNER: dict[str, Any] = {
    "name": "Harbour Cross-Border Legal LLP",
    "categories": [
        {"category": "legal", "specialties": ["company formation", "commercial contracts"]},
        {"category": "regulatory_compliance", "specialties": ["free zone licensing"]},
    ],
    "markets": ["AE", "SA", "QA"],
    "sectors": ["C", "G46"],
    "languages": ["zh-Hant", "zh-Hans", "en", "ar"],
    "capacity": 25,
    "response_window_hours": 48,
    "offer_strategy": "sequential",
    "parallel_offers": 1,
    "active": True,
    "contact": {"name": "Chan Tai Man", "email": "referrals@harbourlegal.example.hk", "phone": "+85221234567"},
    "delivery": {"webhook_url": "https://hooks.harbourlegal.example.hk/goglobal", "email": None},
}


# `_sequential_means_one` in JSON Schema: while offer_strategy is sequential (also when omitted: the default),
# parallel_offers, if given, is 1.
SEQUENTIAL_MEANS_ONE: dict[str, Any] = {
    "if": {"properties": {"offer_strategy": {"const": OfferStrategy.SEQUENTIAL.value}}},
    "then": {"properties": {"parallel_offers": {"const": 1}}},
}


class PartnerProfile(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [_EXAMPLE_PARTNER], **SEQUENTIAL_MEANS_ONE},
    )

    name: str = Field(min_length=1, max_length=200)
    categories: Annotated[
        list[PartnerCategory],
        Field(min_length=1, max_length=10, description="one entry per category, with all its specialties"),
        AfterValidator(_one_entry_per_category),
    ]
    markets: Annotated[
        list[MarketCode],
        Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True}),
        AfterValidator(reject_duplicates),
    ]
    sectors: list[SectorCode] = Field(default=[], max_length=30)
    languages: list[LanguageTag] = Field(min_length=1, max_length=10)
    capacity: int = Field(ge=1, le=1000, description="The most referrals the partner holds open at once.")
    response_window_hours: int = Field(default=48, ge=1, le=720)
    offer_strategy: OfferStrategy = OfferStrategy.SEQUENTIAL
    parallel_offers: int = Field(default=1, ge=1, le=10)
    active: bool = True
    contact: Contact
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @field_validator("parallel_offers")
    @classmethod
    def _sequential_means_one(cls, parallel_offers: int, info: ValidationInfo) -> int:
        # Sequential offering hands a referral to one partner at a time; a higher number would be silently ignored.
        if info.data.get("offer_strategy") == OfferStrategy.SEQUENTIAL and parallel_offers != 1:
            raise ValueError("parallel_offers must be 1 when offer_strategy is 'sequential'")
        return parallel_offers


class PartnerRecord(PartnerProfile):
    """A partner with its stable id, as created by POST and by bulk import."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "harbour-legal", **_EXAMPLE_PARTNER}], **SEQUENTIAL_MEANS_ONE}
    )

    id: PartnerId
