from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.mongo import Document
from goglobal_shared.problems import Problem, ProblemError
from intake.adapters.enterprise_repository import AlreadyRegistered
from intake.api.deps import EnterpriseDep, IntakeDep, OperatorDep
from intake.api.errors import not_found
from intake.api.schemas import EnterpriseOut, EnterpriseRegistered, IssuedKeyOut
from intake.auth.keys import Role
from intake.domain.inputs.enterprise import EnterpriseProfile, EnterpriseUpdate

router = APIRouter(prefix="/v1/enterprises", tags=["enterprises"])


def enterprise_out(doc: Document) -> EnterpriseOut:
    return EnterpriseOut(
        id=doc["_id"], profile=doc["profile"], created_at=doc["created_at"], updated_at=doc["updated_at"]
    )


@router.post(
    "",
    status_code=201,
    response_model=EnterpriseRegistered,
    responses={409: {"model": Problem, "description": "This credit code is already registered"}},
)
async def register(body: EnterpriseProfile, intake: IntakeDep, response: Response) -> EnterpriseRegistered:
    """Open registration. The answer carries the enterprise's API key; it is shown only this once."""
    now = intake.clock()
    try:
        doc = await intake.enterprises.register(body, now)
    except AlreadyRegistered:
        raise ProblemError(409, "already-registered", "an enterprise with this credit code is registered") from None
    key = await intake.api_keys.create(Role.ENTERPRISE, doc["_id"], "registration", now)
    response.headers["Location"] = "/v1/enterprises/me"
    return EnterpriseRegistered(
        enterprise=enterprise_out(doc),
        api_key=IssuedKeyOut(key_id=key.key_id, api_key=key.plaintext, role=Role.ENTERPRISE, subject_id=doc["_id"]),
    )


@router.get("/me", response_model=EnterpriseOut)
async def read_own(principal: EnterpriseDep, intake: IntakeDep) -> EnterpriseOut:
    doc = await intake.enterprises.get(principal.subject_id)
    if doc is None:
        raise not_found("enterprise", principal.subject_id)
    return enterprise_out(doc)


@router.patch("/me", response_model=EnterpriseOut, responses={422: {"model": Problem, "description": "Invalid"}})
async def update_own(body: EnterpriseUpdate, principal: EnterpriseDep, intake: IntakeDep) -> EnterpriseOut:
    """Changes the given fields; the credit code cannot change."""
    changes: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    try:
        updated = await intake.enterprises.update(principal.subject_id, changes, intake.clock())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    if updated is None:
        raise not_found("enterprise", principal.subject_id)
    return enterprise_out(updated)


@router.get("/{enterprise_id}", response_model=EnterpriseOut, responses={404: {"model": Problem}})
async def read_any(
    enterprise_id: Annotated[str, Path(pattern=ID_PATTERN)], principal: OperatorDep, intake: IntakeDep
) -> EnterpriseOut:
    doc = await intake.enterprises.get(enterprise_id)
    if doc is None:
        raise not_found("enterprise", enterprise_id)
    return enterprise_out(doc)
