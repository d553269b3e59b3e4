"""The JSON schemas of the validated input types say what the validators accept (patterns, enums), so a request
the published documents call valid is accepted; what a pattern cannot express is in the description."""

import re
from typing import Any

import pytest
from pydantic import TypeAdapter

from goglobal_contract.identifiers import (
    E164Phone,
    LanguageTag,
    MarketCode,
    UnifiedSocialCreditCode,
    check_language_tag,
    check_market,
)
from goglobal_contract.sectors import SectorCode, check_sector
from intake.domain.inputs.enterprise import EnterpriseProfile, EnterpriseUpdate
from intake.domain.inputs.partner import DeliverySettings
from tests import factories


def schema_of(annotation: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(annotation).json_schema()
    return schema


def test_every_documented_market_and_sector_is_accepted() -> None:
    markets, sectors = schema_of(MarketCode)["enum"], schema_of(SectorCode)["enum"]
    assert all(check_market(code) == code for code in markets) and {"AE", "HK", "MIDDLE_EAST"} <= set(markets)
    assert all(check_sector(code) == code for code in sectors) and {"C", "C26", "U99"} <= set(sectors)


@pytest.mark.parametrize(
    ("annotation", "valid", "invalid"),
    [
        (
            UnifiedSocialCreditCode,
            ["91440300MA5FJ6QW16", factories.enterprise(seed=1)["uscc"]],
            ["1", "9144030OMA5FJ6QW16"],
        ),
        (E164Phone, ["+8613812345678", "+85221234567"], ["12345", "+10", "+86 138 1234 5678"]),
        (LanguageTag, ["zh-Hans", "zh-Hant-HK", "en", "en-GB", "yue", "es-419"], ["!!", "EN", "english", "en--us"]),
    ],
)
def test_patterns_take_the_canonical_values_and_refuse_the_malformed(
    annotation: Any, valid: list[str], invalid: list[str]
) -> None:
    schema = schema_of(annotation)
    pattern = re.compile(schema["pattern"])
    assert all(pattern.search(value) for value in valid), schema["pattern"][:80]
    assert not any(pattern.search(value) for value in invalid)
    assert "cannot express" in schema["description"]


@pytest.mark.parametrize("tag", ["zh-hans", "ZH-HANT", "iw", "zh-min-nan", "en-us"])
def test_language_tags_are_stored_in_a_spelling_the_pattern_describes(tag: str) -> None:
    assert re.search(schema_of(LanguageTag)["pattern"], check_language_tag(tag))


def test_patch_fields_are_not_nullable_since_null_is_refused() -> None:
    schema = EnterpriseUpdate.model_json_schema()
    for name, field in schema["properties"].items():
        assert "null" not in str(field) and "default" not in field, name
    assert set(schema["properties"]) == set(EnterpriseProfile.model_fields) - {"uscc"}


@pytest.mark.parametrize(
    "url", ["https://hooks.example.hk/a\r\nX: 1", "https://hooks.example.hk/a b", "https://h.example.hk/a\x7fb"]
)
def test_a_webhook_url_is_checked_as_submitted(url: str) -> None:
    with pytest.raises(ValueError, match="whitespace or control characters"):
        DeliverySettings.model_validate({"webhook_url": url})


def test_whitespace_around_a_webhook_url_is_trimmed_like_any_field() -> None:
    settings = DeliverySettings.model_validate({"webhook_url": " https://hooks.example.hk/goglobal\n"})
    assert str(settings.webhook_url) == "https://hooks.example.hk/goglobal"
