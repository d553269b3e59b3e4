"""Service requests: an enterprise submits one and reads its own, operators read all
(`intake.service_layer.submissions`)."""

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from goglobal_contract.enums import ReferralStatus
from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.problems import Problem
from intake.api.deps import EnterpriseDep, EnterpriseOrOperatorDep, RequestIdDep, SubmissionsDep
from intake.api.middleware import EARLIER_RESULT
from intake.api.schemas import Page, ServiceRequestOut
from intake.api.views import request_view
from intake.domain.inputs.service_request import ServiceRequestIn

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
    submissions: SubmissionsDep,
    http: Request,
    response: Response,
    request_id: RequestIdDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ServiceRequestOut:
    """Each need becomes a referral. The request and every referral's `referral.submitted` event are stored
    in one write before the 201; a relay publishes the events afterwards."""
    submitted = await submissions.submit(principal, body.needs, request_id, idempotency_key)
    if submitted.earlier:  # a retry: the idempotency middleware answers with what it answered the first time
        setattr(http.state, EARLIER_RESULT, True)
    response.headers["Location"] = f"/v1/service-requests/{submitted.request.id}"
    return request_view(principal, submitted.request, submitted.enterprise)


@router.get("", response_model=Page[ServiceRequestOut])
async def list_requests(
    principal: EnterpriseOrOperatorDep,
    submissions: SubmissionsDep,
    status: Annotated[ReferralStatus | None, Query(description="has a referral in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Page[ServiceRequestOut]:
    """Newest first. Enterprises see their own requests; operators see all."""
    shown, next_cursor = await submissions.page(principal, status, limit, cursor)
    return Page(items=[request_view(principal, s.request, s.enterprise) for s in shown], next_cursor=next_cursor)


@router.get("/{request_id}", response_model=ServiceRequestOut, responses=NOT_FOUND)
async def get_request(
    request_id: RequestId, principal: EnterpriseOrOperatorDep, submissions: SubmissionsDep
) -> ServiceRequestOut:
    shown = await submissions.read(principal, request_id)
    return request_view(principal, shown.request, shown.enterprise)
