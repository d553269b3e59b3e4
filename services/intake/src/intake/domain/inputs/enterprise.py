"""The mainland enterprise asking for help: its registered identity, a contact person and what it consents to."""

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from goglobal_contract.identifiers import E164Phone, LanguageTag, UnifiedSocialCreditCode, reject_duplicates
from goglobal_contract.sectors import SectorCode


class SizeBand(StrEnum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


# CJK Unified Ideographs, Extension A, Compatibility Ideographs and Extensions B-F.
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")


def _has_cjk(name: str) -> str:
    if not _CJK.search(name):
        raise ValueError("the Chinese legal name must contain Chinese characters, as on the business licence")
    return name


LegalNameZh = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="The legal name in Chinese, as on the business licence: it contains Chinese characters",
        json_schema_extra={"pattern": "[\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff]"},  # contains one
    ),
    AfterValidator(_has_cjk),
]
LegalNameEn = Annotated[str, Field(min_length=1, max_length=200)]
PlaceName = Annotated[str, Field(min_length=1, max_length=60)]
PreferredLanguages = Annotated[
    list[LanguageTag],
    Field(min_length=1, max_length=5, json_schema_extra={"uniqueItems": True}),
    AfterValidator(reject_duplicates),
]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    email: EmailStr
    phone: E164Phone


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_contact_with_accepted_partners: bool = False
    receive_email: bool = False


_EXAMPLE_ENTERPRISE: dict[str, Any] = {
    "legal_name_zh": "深圳明日光伏科技有限公司",
    "legal_name_en": "Shenzhen Bright Solar Technology Co., Ltd.",
    "uscc": "91440300MA5FJ6QW16",
    "hq_province": "Guangdong",
    "hq_city": "Shenzhen",
    "sector": "C27",
    "size_band": "medium",
    "contact": {"name": "Li Wei", "email": "li.wei@brightsolar.example.cn", "phone": "+8613812345678"},
    "consent": {"share_contact_with_accepted_partners": True, "receive_email": True},
    "preferred_languages": ["zh-Hans", "en"],
}


class EnterpriseProfile(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [_EXAMPLE_ENTERPRISE]}
    )

    legal_name_zh: LegalNameZh
    legal_name_en: LegalNameEn
    uscc: UnifiedSocialCreditCode
    hq_province: PlaceName
    hq_city: PlaceName
    sector: SectorCode
    size_band: SizeBand
    contact: Contact
    consent: Consent = Field(default_factory=Consent)
    preferred_languages: PreferredLanguages


def profile_of(doc: dict[str, Any] | None) -> EnterpriseProfile | None:
    """The profile of a stored enterprise (None for none)."""
    return EnterpriseProfile.model_validate(doc["profile"]) if doc is not None else None


def patched(profile: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A PATCH changes the fields it names, inside nested objects too (`consent`, `contact`)."""
    merged = dict(profile)
    for name, value in changes.items():
        nested = isinstance(value, dict) and isinstance(profile.get(name), dict)
        merged[name] = patched(profile[name], value) if nested else value
    return merged


def _update_schema(schema: dict[str, Any]) -> None:
    """Documents the fields as the PATCH takes them: `X | None` in Python (None is "not sent"), but null is
    refused, so the schema offers neither null nor a null default."""
    schema["examples"] = [{"hq_city": "Guangzhou", "preferred_languages": ["zh-Hans"]}]
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for name, field in properties.items():
        field.pop("default", None)
        branches = [b for b in field.get("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            del field["anyOf"]
            properties[name] = {**branches[0], **field}


class EnterpriseUpdate(BaseModel):
    """A PATCH: the fields given replace the stored ones; omitted fields stay as they are. Every field of the
    profile is required, so none can be cleared: null is refused. The USCC is the enterprise's identity and cannot
    change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=_update_schema)

    legal_name_zh: LegalNameZh | None = None
    legal_name_en: LegalNameEn | None = None
    hq_province: PlaceName | None = None
    hq_city: PlaceName | None = None
    sector: SectorCode | None = None
    size_band: SizeBand | None = None
    contact: Contact | None = None
    consent: Consent | None = None
    preferred_languages: PreferredLanguages | None = None

    @model_validator(mode="before")
    @classmethod
    def _uscc_is_fixed(cls, data: Any) -> Any:
        # Caught before `extra="forbid"` so the user learns why, not just that the field is unexpected.
        if isinstance(data, dict) and "uscc" in data:
            raise ValueError("uscc cannot be changed: it identifies the enterprise; register a new profile instead")
        return data

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        # None only means "not sent"; an explicit null would otherwise erase a required profile field.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null: omit it to leave it unchanged")
        return value
