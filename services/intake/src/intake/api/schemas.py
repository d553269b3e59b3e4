"""Response bodies. Request bodies are intake's input models (`intake.domain.inputs`)."""

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from goglobal_contract.enums import ReferralStatus
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.partner import PartnerProfile
from intake.domain.inputs.service_request import Need

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page; null on the last page")


class EnterpriseOut(BaseModel):
    id: str
    profile: EnterpriseProfile
    created_at: datetime
    updated_at: datetime


class IssuedKeyOut(BaseModel):
    key_id: str
    api_key: str = Field(description="shown once; only a hash is stored")
    role: str
    subject_id: str


class KeyOut(BaseModel):
    key_id: str
    role: str
    subject_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class EnterpriseRegistered(BaseModel):
    enterprise: EnterpriseOut
    api_key: IssuedKeyOut


class EnterpriseSummary(BaseModel):
    """What a party may see of the enterprise behind a referral; names and contact depend on the role."""

    id: str | None = None
    legal_name_zh: str | None = None
    legal_name_en: str | None = None
    sector: str | None = None
    size_band: str | None = None
    hq_province: str | None = None
    contact: dict[str, Any] | None = None


class ReferralView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "A referral as the caller's role may see it"})

    id: str
    request_id: str
    status: ReferralStatus
    need: Need
    enterprise: EnterpriseSummary
    partner_id: str | None = Field(None, description="the partner that accepted")
    open_offers: list[str] = Field(
        default_factory=list, description="partners that may accept now (a partner sees only itself)"
    )
    candidates: list[dict[str, Any]] | None = Field(None, description="operators only: matching's ranking")
    decline: dict[str, Any] | None = None
    completion: dict[str, Any] | None = None
    rating: dict[str, Any] | None = None
    submitted_at: datetime


class ServiceRequestOut(BaseModel):
    id: str
    enterprise_id: str
    status: str = Field(description="`open` while any referral is open, else `done`")
    progress: dict[str, int] = Field(description="number of referrals in each status")
    referrals: list[ReferralView]
    created_at: datetime


class HistoryEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str = Field(alias="from")
    to_status: str = Field(alias="to")
    why: str
    cause_id: str

    model_config = ConfigDict(populate_by_name=True)


class PartnerOut(BaseModel):
    id: str
    profile: PartnerProfile
    version: int
    created_at: datetime
    updated_at: datetime


class ImportError_(BaseModel):
    line: int
    field: str
    message: str


class ImportReport(BaseModel):
    created: int
    updated: int
    failed: int
    errors: list[ImportError_]


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, examples=["duplicate of another request"])


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["harbour-counsel"])


class NewKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120, examples=["night-shift operator"])
