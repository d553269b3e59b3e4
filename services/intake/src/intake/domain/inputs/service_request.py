"""What an enterprise asks for (needs), and what partners and enterprises say back (decline, completion, rating)."""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from goglobal_contract.enums import BudgetBand, DeclineReason, OfferStrategy, Outcome, ServiceCategory, Urgency
from goglobal_contract.identifiers import LanguageTag, MarketCode, PartnerId, drop_duplicates


class Need(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        # `_width_goes_with_parallel` in JSON Schema: parallel_offers only with offer_strategy "parallel".
        json_schema_extra={
            "if": {"properties": {"parallel_offers": {"type": "integer"}}, "required": ["parallel_offers"]},
            "then": {"properties": {"offer_strategy": {"const": "parallel"}}, "required": ["offer_strategy"]},
        },
    )

    service_category: ServiceCategory
    # Naming a market twice changes nothing about the need, so repeats are dropped rather than refused.
    target_markets: Annotated[list[MarketCode], Field(min_length=1, max_length=30), AfterValidator(drop_duplicates)]
    description: str = Field(default="", max_length=5000)
    urgency: Urgency = Urgency.NORMAL
    budget_band: BudgetBand = BudgetBand.UNDISCLOSED
    languages: Annotated[list[LanguageTag], Field(max_length=5), AfterValidator(drop_duplicates)] = []
    offer_strategy: OfferStrategy | None = Field(
        default=None, description="overrides the category's default: offer one partner at a time, or k at once"
    )
    parallel_offers: int | None = Field(default=None, ge=2, le=10, description="k, with `offer_strategy: parallel`")
    excluded_partners: Annotated[list[PartnerId], Field(max_length=50), AfterValidator(drop_duplicates)] = []

    @model_validator(mode="after")
    def _width_goes_with_parallel(self) -> "Need":
        if self.parallel_offers is not None and self.offer_strategy is not OfferStrategy.PARALLEL:
            raise ValueError("parallel_offers needs offer_strategy 'parallel'")
        return self


_EXAMPLE_REQUEST: dict[str, Any] = {
    "needs": [
        {
            "service_category": "legal",
            "target_markets": ["AE", "SA"],
            "description": "Set up a trading subsidiary in Dubai and a branch office in Riyadh.",
            "urgency": "high",
            "budget_band": "from_50k_to_200k_usd",
            "languages": ["zh-Hans", "en"],
        },
        {
            "service_category": "banking_and_fund_management",
            "target_markets": ["MIDDLE_EAST"],
            "description": "Open USD and AED corporate accounts; advice on treasury across the Gulf.",
        },
    ]
}


class ServiceRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE_REQUEST]})

    needs: list[Need] = Field(min_length=1, max_length=10)


class Decline(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "no_capacity"}, {"reason": "other", "text": "Firm is closing."}]},
    )

    reason: DeclineReason
    text: str = Field(default="", max_length=2000, validate_default=True)

    @field_validator("text")
    @classmethod
    def _other_needs_text(cls, text: str, info: ValidationInfo) -> str:
        # "other" on its own tells the enterprise and the operators nothing.
        if info.data.get("reason") == DeclineReason.OTHER and not text:
            raise ValueError("text is required when reason is 'other': say why the referral is declined")
        return text


class Completion(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"outcome": "engaged", "notes": "Engagement letter signed on 3 March."}]},
    )

    outcome: Outcome
    notes: str = Field(min_length=1, max_length=5000)


class Rating(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"score": 5, "comment": "Quick and clear advice."}]},
    )

    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)
