"""Referrals: reading them (scoped by role) and every party's actions on them (`intake.service_layer.referrals`)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.problems import Problem
from intake.api.deps import EnterpriseDep, OperatorDep, PartnerDep, PrincipalDep, ReferralsDep, RequestIdDep
from intake.api.schemas import AssignBody, CloseBody, HistoryEntry, Page, ReferralView
from intake.api.views import history_view, referral_view
from intake.auth.keys import Principal
from intake.domain.inputs.service_request import Completion, Decline, Rating
from intake.service_layer.referrals import Seen

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
ReferralId = Annotated[str, Path(pattern=ID_PATTERN, description="referral id")]
Cursor = Annotated[
    str | None, Query(pattern=r"^[0-9a-f]{32}(\.[0-9]{1,2})?$", description="`next_cursor` of the previous page")
]
ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such referral that you can see"},
    409: {"model": Problem, "description": "The referral's state does not allow this"},
}


def _view(principal: Principal, seen: Seen) -> ReferralView:
    return referral_view(principal, seen.request, seen.referral, seen.enterprise)


@router.get("", response_model=Page[ReferralView])
async def list_referrals(
    principal: PrincipalDep,
    referrals: ReferralsDep,
    status: Annotated[ReferralStatus | None, Query(description="only referrals in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Page[ReferralView]:
    """Partners: referrals offered to them (`status=accepted` for the ones they took). Enterprises: their
    own. Operators: all, e.g. `status=unmatched` for the queue that needs a manual assignment."""
    page = await referrals.page(principal, status, limit, cursor)
    return Page(items=[_view(principal, seen) for seen in page.items], next_cursor=page.next_cursor)


@router.get("/{referral_id}", response_model=ReferralView, responses=ERRORS)
async def get_referral(referral_id: ReferralId, principal: PrincipalDep, referrals: ReferralsDep) -> ReferralView:
    return _view(principal, await referrals.read(principal, referral_id))


@router.get("/{referral_id}/history", response_model=list[HistoryEntry], responses=ERRORS)
async def get_history(referral_id: ReferralId, principal: PrincipalDep, referrals: ReferralsDep) -> list[HistoryEntry]:
    """Every change: who, when, what, why, and the request or event that caused it. Append-only."""
    request = await referrals.find(principal, referral_id)
    return [HistoryEntry.model_validate(step) for step in history_view(principal, request.referral(referral_id))]


@router.post("/{referral_id}/accept", response_model=ReferralView, responses=ERRORS)
async def accept(
    referral_id: ReferralId, principal: PartnerDep, referrals: ReferralsDep, request_id: RequestIdDep
) -> ReferralView:
    return _view(principal, await referrals.accept(principal, referral_id, request_id))


@router.post("/{referral_id}/decline", response_model=ReferralView, responses=ERRORS)
async def decline(
    referral_id: ReferralId, body: Decline, principal: PartnerDep, referrals: ReferralsDep, request_id: RequestIdDep
) -> ReferralView:
    return _view(principal, await referrals.decline(principal, referral_id, body, request_id))


@router.post("/{referral_id}/start", response_model=ReferralView, responses=ERRORS)
async def start(
    referral_id: ReferralId, principal: PartnerDep, referrals: ReferralsDep, request_id: RequestIdDep
) -> ReferralView:
    return _view(principal, await referrals.start(principal, referral_id, request_id))


@router.post("/{referral_id}/complete", response_model=ReferralView, responses=ERRORS)
async def complete(
    referral_id: ReferralId,
    body: Completion,
    principal: PartnerDep,
    referrals: ReferralsDep,
    request_id: RequestIdDep,
) -> ReferralView:
    """A referral closes only with an outcome code and notes."""
    return _view(principal, await referrals.complete(principal, referral_id, body, request_id))


@router.post("/{referral_id}/rating", response_model=ReferralView, responses=ERRORS)
async def rate(
    referral_id: ReferralId, body: Rating, principal: EnterpriseDep, referrals: ReferralsDep, request_id: RequestIdDep
) -> ReferralView:
    return _view(principal, await referrals.rate(principal, referral_id, body, request_id))


@router.post("/{referral_id}/withdraw", response_model=ReferralView, responses=ERRORS)
async def withdraw(
    referral_id: ReferralId, principal: EnterpriseDep, referrals: ReferralsDep, request_id: RequestIdDep
) -> ReferralView:
    """The enterprise withdraws this need; an open offer is cancelled."""
    return _view(principal, await referrals.withdraw(principal, referral_id, request_id))


@router.post("/{referral_id}/close", response_model=ReferralView, responses=ERRORS)
async def close(
    referral_id: ReferralId,
    body: CloseBody,
    principal: OperatorDep,
    referrals: ReferralsDep,
    request_id: RequestIdDep,
) -> ReferralView:
    return _view(principal, await referrals.close(principal, referral_id, body.reason, request_id))


@router.post("/{referral_id}/assign", response_model=ReferralView, responses=ERRORS)
async def assign(
    referral_id: ReferralId,
    body: AssignBody,
    principal: OperatorDep,
    referrals: ReferralsDep,
    request_id: RequestIdDep,
) -> ReferralView:
    """Picks the partner for an unmatched referral; matching then offers it to them."""
    return _view(principal, await referrals.assign(principal, referral_id, body.partner_id, request_id))
