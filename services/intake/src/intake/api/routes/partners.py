"""The partner directory: operators manage it; a partner reads its own profile (`intake.service_layer.partners`)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field

from goglobal_contract.identifiers import not_reserved
from goglobal_shared.mongo import Document
from goglobal_shared.problems import Problem
from goglobal_shared.webhook_secrets import partner_secret
from intake.api.deps import IntakeDep, OperatorDep, PartnerDep, PartnersDep
from intake.api.schemas import ImportError_, ImportReport, IssuedKeyOut, NewKeyBody, Page, PartnerOut
from intake.auth.keys import Role
from intake.domain.inputs.partner import PartnerProfile, PartnerRecord
from intake.domain.partner_import import ImportFormat

router = APIRouter(prefix="/v1/partners", tags=["partners"])
PartnerPath = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="partner id"), AfterValidator(not_reserved)
]
IMPORT_CSV_EXAMPLE = (
    "id,name,categories,markets,languages,capacity,contact_name,contact_email,contact_phone\n"
    "harbour-legal,Harbour Legal LLP,legal:company formation;regulatory_compliance,AE;SA,en;zh-Hant,25,"
    "Chan Tai Man,referrals@harbourlegal.example.hk,+85221234567\n"
)
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Problem, "description": "No such partner"}}


def partner_out(doc: Document) -> PartnerOut:
    return PartnerOut(
        id=doc["_id"],
        profile=doc["profile"],
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


@router.get("/me", response_model=PartnerOut)
async def read_own(principal: PartnerDep, partners: PartnersDep) -> PartnerOut:
    return partner_out(await partners.read(principal.subject_id))


class WebhookSecret(BaseModel):
    secret: str = Field(description="Standard Webhooks secret (`whsec_...`); verify `webhook-signature` with it")
    generation: int
    previous_valid_until: datetime | None = Field(
        description="after a rotation, deliveries are also signed with the previous secret until then"
    )


def _secret_out(intake: IntakeDep, doc: Document) -> WebhookSecret:
    state = doc.get("webhook_secret") or {}
    generation = state.get("generation", 1)
    key = intake.settings.webhook_master_key.get_secret_value()
    return WebhookSecret(
        secret=partner_secret(key, doc["_id"], generation),
        generation=generation,
        previous_valid_until=state.get("previous_valid_until"),
    )


@router.get("/me/webhook-secret", response_model=WebhookSecret)
async def read_webhook_secret(principal: PartnerDep, partners: PartnersDep, intake: IntakeDep) -> WebhookSecret:
    """The secret your webhook receiver verifies signatures with."""
    return _secret_out(intake, await partners.read(principal.subject_id))


@router.post("/me/webhook-secret/rotate", response_model=WebhookSecret)
async def rotate_webhook_secret(principal: PartnerDep, partners: PartnersDep, intake: IntakeDep) -> WebhookSecret:
    """A new secret; the previous one keeps signing for the configured overlap (deliveries carry both
    signatures), so the receiver can switch without losing a delivery."""
    saved = await partners.rotate_secret(principal.subject_id, principal.label)
    return _secret_out(intake, saved.doc)


@router.post(
    "",
    status_code=201,
    response_model=PartnerOut,
    responses={409: {"model": Problem, "description": "A partner with this id exists"}},
)
async def create(body: PartnerRecord, principal: OperatorDep, partners: PartnersDep, response: Response) -> PartnerOut:
    saved = await partners.register(body, principal.label)
    response.headers["Location"] = f"/v1/partners/{body.id}"
    return partner_out(saved.doc)


@router.get("", response_model=Page[PartnerOut])
async def list_partners(
    principal: OperatorDep,
    intake: IntakeDep,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=63)] = None,
) -> Page[PartnerOut]:
    docs = await intake.partners.page(limit + 1, cursor, active)
    return Page(
        items=[partner_out(d) for d in docs[:limit]], next_cursor=docs[limit - 1]["_id"] if len(docs) > limit else None
    )


@router.get("/{partner_id}", response_model=PartnerOut, responses=NOT_FOUND)
async def read(partner_id: PartnerPath, principal: OperatorDep, partners: PartnersDep) -> PartnerOut:
    return partner_out(await partners.read(partner_id))


@router.put(
    "/{partner_id}",
    response_model=PartnerOut,
    responses={
        200: {"description": "Replaced: the partner existed"},
        201: {"model": PartnerOut, "description": "Created: there was no partner with this id"},
    },
)
async def replace(
    partner_id: PartnerPath, body: PartnerProfile, principal: OperatorDep, partners: PartnersDep, response: Response
) -> PartnerOut:
    """Creates or replaces the partner's profile; matching's copy follows through `partner.upserted`."""
    saved = await partners.replace(partner_id, body, principal.label)
    response.status_code = 201 if saved.created else 200
    return partner_out(saved.doc)


@router.delete("/{partner_id}", response_model=PartnerOut, responses=NOT_FOUND)
async def deactivate(partner_id: PartnerPath, principal: OperatorDep, partners: PartnersDep) -> PartnerOut:
    """Partners are deactivated, never erased: their referrals' history keeps pointing at them."""
    return partner_out((await partners.deactivate(partner_id, principal.label)).doc)


@router.post(
    "/import",
    response_model=ImportReport,
    responses={
        415: {"description": "Neither CSV nor JSON: send text/csv or application/json, or name the format (`format`)"}
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": IMPORT_CSV_EXAMPLE},
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": [PartnerRecord.model_json_schema()["examples"][0]],
                },
            },
        }
    },
)
async def import_partners(
    request: Request,
    principal: OperatorDep,
    partners: PartnersDep,
    format: Annotated[ImportFormat | None, Query()] = None,
) -> ImportReport:
    """Bulk create/replace from CSV, JSON or Open Referral HSDS 3.0 organizations. A bad row is reported
    with its line and field and never stops the good rows; each good row is written whole or not at all."""
    body = await request.body()
    report = await partners.import_file(body, request.headers.get("content-type"), format, principal.label)
    errors = [ImportError_(line=e.line, field=e.field, message=e.message) for e in report.errors]
    return ImportReport(created=report.created, updated=report.updated, failed=report.failed, errors=errors)


@router.post("/{partner_id}/api-keys", status_code=201, response_model=IssuedKeyOut, responses=NOT_FOUND)
async def issue_partner_key(
    partner_id: PartnerPath, body: NewKeyBody, principal: OperatorDep, partners: PartnersDep
) -> IssuedKeyOut:
    """A key for the partner's own systems; shown only in this answer."""
    key = await partners.issue_key(partner_id, body.name)
    return IssuedKeyOut(key_id=key.key_id, api_key=key.plaintext, role=Role.PARTNER, subject_id=partner_id)
