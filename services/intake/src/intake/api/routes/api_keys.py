"""API keys: list your own, revoke one; operators create operator keys and can revoke any key.

A revoked key is refused at once by the replica that revoked it and, through the `api_key_revoked` event, by every
other replica within moments; without Kafka, within the verified-key cache's TTL (at most 5 s)."""

from typing import Annotated

from fastapi import APIRouter, Path

from goglobal_shared.problems import Problem
from intake.api.deps import ApiKeysDep, OperatorDep, PrincipalDep
from intake.api.schemas import IssuedKeyOut, KeyOut, NewKeyBody
from intake.auth.keys import KeyInfo, Role

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{16}$")]


def key_out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        key_id=info.key_id,
        role=info.role,
        subject_id=info.subject_id,
        name=info.name,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
    )


@router.get("", response_model=list[KeyOut])
async def list_own(principal: PrincipalDep, keys: ApiKeysDep) -> list[KeyOut]:
    return [key_out(k) for k in await keys.own(principal)]


@router.post("", status_code=201, response_model=IssuedKeyOut)
async def create_own_key(body: NewKeyBody, principal: PrincipalDep, keys: ApiKeysDep) -> IssuedKeyOut:
    """Another key for yourself (e.g. before revoking the one in use): same role, same owner; shown only here."""
    key = await keys.issue_own(principal, body.name)
    return IssuedKeyOut(key_id=key.key_id, api_key=key.plaintext, role=principal.role, subject_id=principal.subject_id)


@router.post("/operators", status_code=201, response_model=IssuedKeyOut)
async def create_operator_key(body: NewKeyBody, principal: OperatorDep, keys: ApiKeysDep) -> IssuedKeyOut:
    """A key for another operator, named after them; shown only in this answer."""
    key = await keys.issue_operator(principal, body.name)
    return IssuedKeyOut(key_id=key.key_id, api_key=key.plaintext, role=Role.OPERATOR, subject_id=body.name)


@router.delete("/{key_id}", response_model=KeyOut, responses={404: {"model": Problem}})
async def revoke(key_id: KeyId, principal: PrincipalDep, keys: ApiKeysDep) -> KeyOut:
    return key_out(await keys.revoke(principal, key_id))  # other replicas evict the key once it is published
