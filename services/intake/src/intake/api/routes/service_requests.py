from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.problems import Problem
from intake.adapters.service_request_repository import NotFound, RequestFilter
from intake.api.deps import EnterpriseDep, EnterpriseOrOperatorDep, IntakeDep, RequestIdDep
from intake.api.errors import not_found
from intake.api.middleware import EARLIER_RESULT
from intake.api.schemas import Page, ServiceRequestOut
from intake.api.views import request_view
from intake.auth.keys import Role
from intake.domain.inputs.service_request import ServiceRequestIn
from intake.domain.service_requests import Actor, ServiceRequest, submit

router = APIRouter(prefix="/v1/service-requests", tags=["service requests"])
RequestId = Annotated[str, Path(pattern=ID_PATTERN, description="service request id")]
Cursor = Annotated[str | None, Query(pattern=ID_PATTERN, description="`next_cursor` of the previous page")]
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Problem, "description": "Not found (or not yours)"}}


@router.post(
    "",
    status_code=201,
    response_model=ServiceRequestOut,
    responses={422: {"model": Problem, "description": "Invalid request"}},
)
async def submit_request(
    body: ServiceRequestIn,
    principal: EnterpriseDep,
    intake: IntakeDep,
    http: Request,
    response: Response,
    request_id: RequestIdDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ServiceRequestOut:
    """Each need becomes a referral. The request and every referral's `referral.submitted` event are stored
    in one write before the 201; a relay publishes the events afterwards."""
    enterprise = await intake.enterprises.recent(principal.subject_id)
    assert enterprise is not None, "an enterprise key always belongs to a registered enterprise"
    now = intake.clock()
    request = submit(
        principal.subject_id,
        enterprise["profile"],
        body.needs,
        Actor(principal.label, request_id),
        now,
        idempotency_key=idempotency_key,
    )
    # With an Idempotency-Key already used, the first submission stands (a retry after a lost answer), and the
    # idempotency middleware answers with what it answered then.
    stored = await intake.requests.add(request, now)
    if stored.id != request.id:
        setattr(http.state, EARLIER_RESULT, True)
    response.headers["Location"] = f"/v1/service-requests/{stored.id}"
    return request_view(principal, stored, enterprise)


@router.get("", response_model=Page[ServiceRequestOut])
async def list_requests(
    principal: EnterpriseOrOperatorDep,
    intake: IntakeDep,
    status: Annotated[ReferralStatus | None, Query(description="has a referral in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Page[ServiceRequestOut]:
    """Newest first. Enterprises see their own requests; operators see all."""
    own = principal.subject_id if principal.role is Role.ENTERPRISE else None
    requests = await intake.requests.page(RequestFilter(enterprise_id=own, status=status), limit + 1, cursor)
    items = [request_view(principal, r, await intake.enterprises.get(r.enterprise_id)) for r in requests[:limit]]
    return Page(items=items, next_cursor=requests[limit - 1].id if len(requests) > limit else None)


@router.get("/{request_id}", response_model=ServiceRequestOut, responses=NOT_FOUND)
async def get_request(
    request_id: RequestId, principal: EnterpriseOrOperatorDep, intake: IntakeDep
) -> ServiceRequestOut:
    request = await _own_request(request_id, principal.role, principal.subject_id, intake)
    return request_view(principal, request, await intake.enterprises.get(request.enterprise_id))


async def _own_request(request_id: str, role: Role, subject_id: str, intake: IntakeDep) -> ServiceRequest:
    try:
        request = await intake.requests.get(request_id)
    except NotFound:
        raise not_found("service-request", request_id) from None
    if role is Role.ENTERPRISE and request.enterprise_id != subject_id:
        raise not_found("service-request", request_id)
    return request
