"""Enterprises: open registration, and each enterprise's own profile (`intake.service_layer.enterprises`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from goglobal_contract.ids import ID_PATTERN
from goglobal_shared.mongo import Document
from goglobal_shared.problems import Problem
from intake.api.deps import EnterpriseDep, EnterprisesDep, OperatorDep
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
async def register(body: EnterpriseProfile, enterprises: EnterprisesDep, response: Response) -> EnterpriseRegistered:
    """Open registration. The answer carries the enterprise's API key; it is shown only this once."""
    registered = await enterprises.register(body)
    doc, key = registered.enterprise, registered.key
    response.headers["Location"] = "/v1/enterprises/me"
    return EnterpriseRegistered(
        enterprise=enterprise_out(doc),
        api_key=IssuedKeyOut(key_id=key.key_id, api_key=key.plaintext, role=Role.ENTERPRISE, subject_id=doc["_id"]),
    )


@router.get("/me", response_model=EnterpriseOut)
async def read_own(principal: EnterpriseDep, enterprises: EnterprisesDep) -> EnterpriseOut:
    return enterprise_out(await enterprises.read(principal.subject_id))


@router.patch("/me", response_model=EnterpriseOut, responses={422: {"model": Problem, "description": "Invalid"}})
async def update_own(body: EnterpriseUpdate, principal: EnterpriseDep, enterprises: EnterprisesDep) -> EnterpriseOut:
    """Changes the given fields; the credit code cannot change."""
    changes: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    return enterprise_out(await enterprises.update(principal.subject_id, changes))


@router.get("/{enterprise_id}", response_model=EnterpriseOut, responses={404: {"model": Problem}})
async def read_any(
    enterprise_id: Annotated[str, Path(pattern=ID_PATTERN)], principal: OperatorDep, enterprises: EnterprisesDep
) -> EnterpriseOut:
    return enterprise_out(await enterprises.read(enterprise_id))
