"""Delivery logs (every webhook and e-mail attempt) and redelivery, for partners (their own) and operators."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from goglobal_contract.notification_events import Attempt
from goglobal_shared.problems import Problem
from intake.api.deps import IntakeDep, PartnerOrOperatorDep, RedeliveriesDep
from intake.auth.keys import Principal, Role

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


class DeliveryOut(BaseModel):
    delivery_id: str
    channel: str
    recipient_type: str
    recipient_id: str
    event_id: str
    delivered_type: str
    referral_id: str | None
    target: str
    status: str = Field(description="delivered, retrying or failed")
    attempts: list[Attempt]
    next_attempt_at: datetime | None = None
    updated_at: datetime


class RedeliverBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"failed_since": "2026-11-25T00:00:00Z"}]}
    )

    failed_since: datetime
    partner_id: str | None = Field(default=None, description="operators: one partner's deliveries only")


class RedeliveryAccepted(BaseModel):
    request_id: str
    status: Literal["accepted"] = "accepted"


def _out(doc: dict[str, Any]) -> DeliveryOut:
    return DeliveryOut.model_validate(doc)


def _scope(principal: Principal) -> dict[str, Any]:
    return {} if principal.role is Role.OPERATOR else {"recipient_id": principal.subject_id}


@router.get("", response_model=list[DeliveryOut])
async def list_deliveries(
    principal: PartnerOrOperatorDep,
    intake: IntakeDep,
    status: Literal["delivered", "retrying", "failed"] | None = None,
    partner_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    since: Annotated[datetime | None, Query(description="changed at or after this time")] = None,
    before: Annotated[datetime | None, Query(description="changed before this time (the next page)")] = None,
) -> list[DeliveryOut]:
    """Newest first. Partners see their own; operators everything (or one partner's with `partner_id`)."""
    query = _scope(principal)
    if status is not None:
        query["status"] = status
    if partner_id is not None and principal.role is Role.OPERATOR:
        query["recipient_id"] = partner_id
    if since is not None:
        query["updated_at"] = {"$gte": since}
    return [_out(d) for d in await intake.notifications.delivery_page(query, limit, before)]


@router.post(
    "/{delivery_id}/redeliver", status_code=202, response_model=RedeliveryAccepted, responses={404: {"model": Problem}}
)
async def redeliver_one(
    delivery_id: Annotated[str, Path(max_length=200)], principal: PartnerOrOperatorDep, redeliveries: RedeliveriesDep
) -> RedeliveryAccepted:
    return RedeliveryAccepted(request_id=await redeliveries.one(principal, delivery_id))


@router.post("/redeliver", status_code=202, response_model=RedeliveryAccepted)
async def redeliver_failed(
    body: RedeliverBody, principal: PartnerOrOperatorDep, redeliveries: RedeliveriesDep
) -> RedeliveryAccepted:
    """Every failed (or held) delivery since `failed_since` goes out again; a disabled endpoint is re-enabled."""
    request_id = await redeliveries.failed_since(principal, body.failed_since, body.partner_id)
    return RedeliveryAccepted(request_id=request_id)
