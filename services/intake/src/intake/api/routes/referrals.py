"""Referrals: reading them (scoped by role) and every party's actions on them."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.mongo import Document
from goglobal_shared.problems import Problem
from intake.adapters.enterprise_repository import profile_of
from intake.adapters.service_request_repository import NotFound, RequestFilter
from intake.api.deps import (
    EnterpriseDep,
    IntakeDep,
    OperatorDep,
    PartnerDep,
    PrincipalDep,
    RequestIdDep,
)
from intake.api.errors import conflict, not_found
from intake.api.schemas import AssignBody, CloseBody, HistoryEntry, Page, ReferralView
from intake.api.views import history_view, referral_view, visible
from intake.auth.keys import Principal, Role
from intake.components import Intake
from intake.domain.inputs.service_request import Completion, Decline, Rating
from intake.domain.service_requests import Actor, DomainError, NotAParty, ServiceRequest

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
ReferralId = Annotated[str, Path(pattern=ID_PATTERN, description="referral id")]
Cursor = Annotated[
    str | None, Query(pattern=r"^[0-9a-f]{32}(\.[0-9]{1,2})?$", description="`next_cursor` of the previous page")
]
ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such referral that you can see"},
    409: {"model": Problem, "description": "The referral's state does not allow this"},
}


async def _load(intake: Intake, principal: Principal, referral_id: str) -> ServiceRequest:
    try:
        request = await intake.requests.by_referral(referral_id)
    except NotFound:
        raise not_found("referral", referral_id) from None
    if not visible(principal, request, request.referral(referral_id)):
        raise not_found("referral", referral_id)
    return request


Command = Callable[[ServiceRequest], Awaitable[Document | None]]  # returns the enterprise if it read it


async def _act(intake: Intake, principal: Principal, referral_id: str, command: Command) -> ReferralView:
    """Runs `command` on the referral's request as it is now (again if another writer came first) and saves it;
    a caller who may not see the referral gets 404 whether or not it exists."""
    read: list[Document | None] = []

    async def run(request: ServiceRequest) -> bool:
        if not visible(principal, request, request.referral(referral_id)):
            raise NotAParty(referral_id)
        read[:] = [await command(request)]
        return True

    try:
        request = await intake.requests.mutate(referral_id, run, intake.clock)
    except (NotAParty, NotFound):
        raise not_found("referral", referral_id) from None
    except DomainError as exc:
        raise conflict(str(exc)) from exc
    enterprise = (read[0] if read else None) or await intake.enterprises.get(request.enterprise_id)
    return referral_view(principal, request, request.referral(referral_id), enterprise)


def _plain(command: Callable[[ServiceRequest], None]) -> Command:
    async def run(request: ServiceRequest) -> None:
        command(request)

    return run


@router.get("", response_model=Page[ReferralView])
async def list_referrals(
    principal: PrincipalDep,
    intake: IntakeDep,
    status: Annotated[ReferralStatus | None, Query(description="only referrals in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Page[ReferralView]:
    """Partners: referrals offered to them (`status=accepted` for the ones they took). Enterprises: their
    own. Operators: all, e.g. `status=unmatched` for the queue that needs a manual assignment."""
    chosen = RequestFilter(
        enterprise_id=principal.subject_id if principal.role is Role.ENTERPRISE else None,
        partner_id=principal.subject_id if principal.role is Role.PARTNER else None,
        status=status,
    )
    after, skip = _parse_cursor(cursor)
    items: list[ReferralView] = []
    while True:
        requests = await intake.requests.page(chosen, limit, after, include_after=skip > 0)
        for request in requests:
            enterprise = await intake.enterprises.get(request.enterprise_id)
            shown = [
                r
                for r in request.referrals
                if visible(principal, request, r) and (status is None or r.status is status)
            ]
            start = skip if request.id == after else 0
            for position in range(start, len(shown)):
                if len(items) == limit:  # full: the next page starts inside this request
                    return Page(items=items, next_cursor=f"{request.id}.{position}")
                items.append(referral_view(principal, request, shown[position], enterprise))
        if len(requests) < limit:
            return Page(items=items, next_cursor=None)
        after, skip = requests[-1].id, 0


def _parse_cursor(cursor: str | None) -> tuple[str | None, int]:
    """`<request id>` continues after that request; `<request id>.<n>` at its n-th listed referral."""
    if cursor is None:
        return None, 0
    request_id, _, position = cursor.partition(".")
    return request_id, int(position or 0)


@router.get("/{referral_id}", response_model=ReferralView, responses=ERRORS)
async def get_referral(referral_id: ReferralId, principal: PrincipalDep, intake: IntakeDep) -> ReferralView:
    request = await _load(intake, principal, referral_id)
    enterprise = await intake.enterprises.get(request.enterprise_id)
    return referral_view(principal, request, request.referral(referral_id), enterprise)


@router.get("/{referral_id}/history", response_model=list[HistoryEntry], responses=ERRORS)
async def get_history(referral_id: ReferralId, principal: PrincipalDep, intake: IntakeDep) -> list[HistoryEntry]:
    """Every change: who, when, what, why, and the request or event that caused it. Append-only."""
    request = await _load(intake, principal, referral_id)
    return [HistoryEntry.model_validate(step) for step in history_view(principal, request.referral(referral_id))]


@router.post("/{referral_id}/accept", response_model=ReferralView, responses=ERRORS)
async def accept(
    referral_id: ReferralId, principal: PartnerDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    actor = Actor(principal.label, request_id)

    async def accept_now(request: ServiceRequest) -> Document | None:
        # Read as the change is recorded (again if another writer came first): the consent at this moment decides
        # whether the partner is given the contact.
        enterprise = await intake.enterprises.get(request.enterprise_id)
        profile = profile_of(enterprise)
        if profile is None:
            raise DomainError(f"the enterprise behind referral {referral_id} is not registered")
        request.accept(referral_id, principal.subject_id, profile, actor, intake.clock())
        return enterprise

    return await _act(intake, principal, referral_id, accept_now)


@router.post("/{referral_id}/decline", response_model=ReferralView, responses=ERRORS)
async def decline(
    referral_id: ReferralId, body: Decline, principal: PartnerDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    actor = Actor(principal.label, request_id)
    return await _act(
        intake,
        principal,
        referral_id,
        _plain(lambda r: r.decline(referral_id, principal.subject_id, body, actor, intake.clock())),
    )


@router.post("/{referral_id}/start", response_model=ReferralView, responses=ERRORS)
async def start(
    referral_id: ReferralId, principal: PartnerDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    actor = Actor(principal.label, request_id)
    return await _act(
        intake,
        principal,
        referral_id,
        _plain(lambda r: r.start(referral_id, principal.subject_id, actor, intake.clock())),
    )


@router.post("/{referral_id}/complete", response_model=ReferralView, responses=ERRORS)
async def complete(
    referral_id: ReferralId, body: Completion, principal: PartnerDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    """A referral closes only with an outcome code and notes."""
    actor = Actor(principal.label, request_id)
    return await _act(
        intake,
        principal,
        referral_id,
        _plain(lambda r: r.complete(referral_id, principal.subject_id, body, actor, intake.clock())),
    )


@router.post("/{referral_id}/rating", response_model=ReferralView, responses=ERRORS)
async def rate(
    referral_id: ReferralId, body: Rating, principal: EnterpriseDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    actor = Actor(principal.label, request_id)
    return await _act(
        intake, principal, referral_id, _plain(lambda r: r.rate(referral_id, body, actor, intake.clock()))
    )


@router.post("/{referral_id}/withdraw", response_model=ReferralView, responses=ERRORS)
async def withdraw(
    referral_id: ReferralId, principal: EnterpriseDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    """The enterprise withdraws this need; an open offer is cancelled."""
    actor = Actor(principal.label, request_id)
    return await _act(intake, principal, referral_id, _plain(lambda r: r.withdraw(referral_id, actor, intake.clock())))


@router.post("/{referral_id}/close", response_model=ReferralView, responses=ERRORS)
async def close(
    referral_id: ReferralId, body: CloseBody, principal: OperatorDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    actor = Actor(principal.label, request_id)
    return await _act(
        intake, principal, referral_id, _plain(lambda r: r.close(referral_id, body.reason, actor, intake.clock()))
    )


@router.post("/{referral_id}/assign", response_model=ReferralView, responses=ERRORS)
async def assign(
    referral_id: ReferralId, body: AssignBody, principal: OperatorDep, intake: IntakeDep, request_id: RequestIdDep
) -> ReferralView:
    """Picks the partner for an unmatched referral; matching then offers it to them."""
    partner = await intake.partners.get(body.partner_id)
    if partner is None or not partner["profile"]["active"]:
        raise conflict(f"{body.partner_id!r} is not an active partner")
    actor = Actor(principal.label, request_id)
    return await _act(
        intake, principal, referral_id, _plain(lambda r: r.assign(referral_id, body.partner_id, actor, intake.clock()))
    )
