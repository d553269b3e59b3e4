from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from goglobal_shared.enums import ReferralStatus, ServiceCategory
from goglobal_shared.events import MarketCode
from goglobal_shared.problems import Problem, ProblemError
from intake.adapters.referral_repository import ReferralNotFound
from intake.api.deps import IntakeDep
from intake.domain.referrals import NewReferral, submit

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

ReferralId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="referral id")]


class ReferralIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enterprise_name": "Shenzhen Bright Solar Co., Ltd.",
                    "service_category": "legal",
                    "target_markets": ["AE", "SA"],
                    "description": "Set up a trading subsidiary in Dubai and review distributor contracts.",
                }
            ]
        },
    )

    enterprise_name: str = Field(min_length=1, max_length=200)
    service_category: ServiceCategory
    target_markets: list[MarketCode] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=5000)


class MatchedPartner(BaseModel):
    partner_id: str
    partner_name: str
    score: float
    reasons: list[str]


class ReferralOut(BaseModel):
    id: str
    status: ReferralStatus
    enterprise_name: str
    service_category: ServiceCategory
    target_markets: list[str]
    description: str
    submitted_at: datetime
    updated_at: datetime
    matched_partner: MatchedPartner | None = None
    unmatched_reason: str | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "ReferralOut":
        return cls.model_validate({**doc, "id": doc["_id"]})


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No referral with this id"}}


@router.post(
    "", status_code=201, response_model=ReferralOut, responses={422: {"model": Problem, "description": "Invalid body"}}
)
async def submit_referral(body: ReferralIn, intake: IntakeDep) -> ReferralOut:
    """Stores the referral and its `referral.submitted` event together; the event is published afterwards."""
    now = intake.clock()
    referral_id, event = submit(NewReferral(**body.model_dump()), now)
    doc = await intake.referrals.add(referral_id, event, now)
    intake.relay.wake()
    return ReferralOut.from_document(doc)


@router.get("/{referral_id}", response_model=ReferralOut, responses=NOT_FOUND)
async def get_referral(referral_id: ReferralId, intake: IntakeDep) -> ReferralOut:
    try:
        doc = await intake.referrals.get(referral_id)
    except ReferralNotFound as exc:
        raise ProblemError(404, "referral-not-found", str(exc)) from exc
    return ReferralOut.from_document(doc)
