"""Validation rules of the enterprise, service request and partner models."""

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from goglobal_contract.enums import DeclineReason, Urgency
from intake.domain.inputs.enterprise import Consent, EnterpriseProfile, EnterpriseUpdate
from intake.domain.inputs.partner import PartnerProfile, PartnerRecord
from intake.domain.inputs.service_request import Completion, Decline, Need, Rating, ServiceRequestIn

EXAMPLED_MODELS: list[type[BaseModel]] = [
    EnterpriseProfile,
    EnterpriseUpdate,
    ServiceRequestIn,
    Decline,
    Completion,
    Rating,
    PartnerProfile,
    PartnerRecord,
]


def example(model: type[BaseModel]) -> dict[str, Any]:
    examples = model.model_json_schema()["examples"]
    assert isinstance(examples, list)
    first = examples[0]
    assert isinstance(first, dict)
    return first


def errors(model: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    """Validation errors as {dotted location: message}."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


@pytest.mark.parametrize("model", EXAMPLED_MODELS, ids=lambda model: model.__name__)
def test_the_schema_examples_validate(model: type[BaseModel]) -> None:
    for data in model.model_json_schema()["examples"]:
        model.model_validate(data)


@pytest.mark.parametrize("model", EXAMPLED_MODELS, ids=lambda model: model.__name__)
def test_unknown_fields_are_rejected(model: type[BaseModel]) -> None:
    assert errors(model, {**example(model), "nickname": "x"})["nickname"] == "Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Need, {"service_category": "tax", "target_markets": ["AE"], "budget": 1}),
        (Consent, {"receive_sms": True}),
    ],
)
def test_unknown_fields_are_rejected_in_models_without_examples(model: type[BaseModel], data: dict[str, Any]) -> None:
    assert "Extra inputs are not permitted" in errors(model, data).values()


# --- enterprise -------------------------------------------------------------------------------------------------


def test_enterprise_example_is_normalised() -> None:
    profile = EnterpriseProfile.model_validate(
        {**example(EnterpriseProfile), "uscc": "91440300ma5fj6qw16", "preferred_languages": ["zh-hans"]}
    )
    assert profile.uscc == "91440300MA5FJ6QW16"
    assert profile.preferred_languages == ["zh-Hans"]


def test_consent_defaults_to_nothing() -> None:
    data = example(EnterpriseProfile)
    del data["consent"]
    assert EnterpriseProfile.model_validate(data).consent == Consent(
        share_contact_with_accepted_partners=False, receive_email=False
    )


@pytest.mark.parametrize(
    ("change", "location", "problem"),
    [
        ({"legal_name_zh": "Shenzhen Bright Solar"}, "legal_name_zh", "must contain Chinese characters"),
        ({"legal_name_en": "  "}, "legal_name_en", "at least 1 character"),
        ({"uscc": "91440300MA5FJ6QW17"}, "uscc", "check character should be 6"),
        ({"sector": "G26"}, "sector", "belongs to section C"),
        ({"size_band": "huge"}, "size_band", "'micro', 'small', 'medium' or 'large'"),
        ({"preferred_languages": []}, "preferred_languages", "at least 1 item"),
        ({"preferred_languages": ["en", "zh-Hans", "zh-Hant", "ar", "fr", "de"]}, "preferred_languages", "at most 5"),
        ({"preferred_languages": ["zh-hans", "zh-Hans"]}, "preferred_languages", "'zh-Hans' is listed more than once"),
        ({"contact": {"name": "Li", "email": "li@", "phone": "+8613812345678"}}, "contact.email", "email address"),
        ({"contact": {"name": "Li", "email": "li@x.cn", "phone": "13812345678"}}, "contact.phone", "E.164"),
        ({"hq_city": "x" * 61}, "hq_city", "at most 60 characters"),
    ],
)
def test_enterprise_profile_rules(change: dict[str, Any], location: str, problem: str) -> None:
    assert problem in errors(EnterpriseProfile, {**example(EnterpriseProfile), **change})[location]


def test_enterprise_update_is_partial_and_cannot_change_the_uscc() -> None:
    update = EnterpriseUpdate.model_validate({"hq_city": "Guangzhou"})
    assert update.model_dump(exclude_unset=True) == {"hq_city": "Guangzhou"}
    assert "uscc cannot be changed" in errors(EnterpriseUpdate, {"uscc": "91440300MA5FJ6QW16"})[""]


def test_enterprise_update_keeps_the_profile_rules_and_refuses_nulls() -> None:
    assert "must contain Chinese characters" in errors(EnterpriseUpdate, {"legal_name_zh": "abc"})["legal_name_zh"]
    assert "cannot be null" in errors(EnterpriseUpdate, {"hq_city": None})["hq_city"]


def test_enterprise_update_has_every_profile_field_but_the_uscc() -> None:
    assert set(EnterpriseUpdate.model_fields) == set(EnterpriseProfile.model_fields) - {"uscc"}


# --- service requests and answers -------------------------------------------------------------------------------


def test_need_defaults_and_market_deduplication() -> None:
    need = Need.model_validate({"service_category": "tax", "target_markets": ["SA", "AE", "SA", "ASEAN", "AE"]})
    assert need.target_markets == ["SA", "AE", "ASEAN"]
    assert (need.description, need.urgency, need.budget_band, need.languages) == ("", Urgency.NORMAL, "undisclosed", [])


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"target_markets": []}, "target_markets"),
        ({"target_markets": ["AE"] * 31}, "target_markets"),
        ({"target_markets": ["XX"]}, "target_markets.0"),
        ({"service_category": "astrology"}, "service_category"),
        ({"description": "x" * 5001}, "description"),
        ({"urgency": "yesterday"}, "urgency"),
        ({"budget_band": "lots"}, "budget_band"),
        ({"languages": ["en", "fr", "de", "es", "it", "pt"]}, "languages"),
        ({"languages": ["english"]}, "languages.0"),
    ],
)
def test_need_rules(change: dict[str, Any], location: str) -> None:
    assert location in errors(Need, {"service_category": "legal", "target_markets": ["AE"], **change})


def test_service_request_has_one_to_ten_needs() -> None:
    need = {"service_category": "legal", "target_markets": ["AE"]}
    assert "needs" in errors(ServiceRequestIn, {"needs": []})
    assert "needs" in errors(ServiceRequestIn, {"needs": [need] * 11})
    assert len(ServiceRequestIn.model_validate({"needs": [need] * 10}).needs) == 10


def test_service_request_example_has_legal_and_banking_needs() -> None:
    request = ServiceRequestIn.model_validate(example(ServiceRequestIn))
    assert [(need.service_category, need.target_markets) for need in request.needs] == [
        ("legal", ["AE", "SA"]),
        ("banking_and_fund_management", ["MIDDLE_EAST"]),
    ]


@pytest.mark.parametrize("reason", [reason for reason in DeclineReason if reason is not DeclineReason.OTHER])
def test_decline_text_is_optional_for_named_reasons(reason: DeclineReason) -> None:
    assert Decline(reason=reason).text == ""


@pytest.mark.parametrize("data", [{"reason": "other"}, {"reason": "other", "text": "   "}])
def test_decline_for_other_reason_needs_text(data: dict[str, Any]) -> None:
    assert "text is required when reason is 'other'" in errors(Decline, data)["text"]


def test_decline_rules() -> None:
    assert Decline(reason=DeclineReason.OTHER, text="We are merging").text == "We are merging"
    assert "text" in errors(Decline, {"reason": "no_capacity", "text": "x" * 2001})
    assert "reason" in errors(Decline, {"reason": "busy"})


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ({"outcome": "engaged"}, "notes"),
        ({"outcome": "engaged", "notes": "  "}, "notes"),
        ({"outcome": "engaged", "notes": "x" * 5001}, "notes"),
        ({"outcome": "won", "notes": "ok"}, "outcome"),
    ],
)
def test_completion_rules(data: dict[str, Any], location: str) -> None:
    assert location in errors(Completion, data)


@pytest.mark.parametrize(
    ("data", "location"),
    [({"score": 0}, "score"), ({"score": 6}, "score"), ({"score": 3, "comment": "x" * 2001}, "comment")],
)
def test_rating_rules(data: dict[str, Any], location: str) -> None:
    assert location in errors(Rating, data)


def test_rating_comment_is_optional() -> None:
    assert Rating(score=4).comment == ""


# --- partners ---------------------------------------------------------------------------------------------------


def test_partner_defaults_and_normalisation() -> None:
    data = {
        **example(PartnerProfile),
        "categories": [{"category": "tax", "specialties": ["  Transfer Pricing "]}],
        "languages": ["ZH-hant"],
    }
    for key in ("sectors", "response_window_hours", "offer_strategy", "parallel_offers", "active", "delivery"):
        data.pop(key)
    partner = PartnerProfile.model_validate(data)
    assert partner.categories[0].specialties == ["transfer pricing"]
    assert partner.languages == ["zh-Hant"]
    assert (partner.sectors, partner.response_window_hours, partner.offer_strategy) == ([], 48, "sequential")
    assert (partner.parallel_offers, partner.active, partner.delivery.webhook_url) == (1, True, None)


@pytest.mark.parametrize(
    ("change", "location", "problem"),
    [
        ({"parallel_offers": 2}, "parallel_offers", "must be 1 when offer_strategy is 'sequential'"),
        ({"delivery": {"webhook_url": "http://hooks.example.hk/x"}}, "delivery.webhook_url", "must use https"),
        ({"delivery": {"webhook_url": "ftp://hooks.example.hk/x"}}, "delivery.webhook_url", "URL scheme"),
        ({"delivery": {"email": "nope"}}, "delivery.email", "email address"),
        ({"categories": [{"category": "legal"}, {"category": "legal"}]}, "categories", "listed twice"),
        ({"categories": []}, "categories", "at least 1 item"),
        ({"categories": [{"category": "legal", "specialties": [""]}]}, "categories.0.specialties.0", "at least 1"),
        ({"categories": [{"category": "legal", "specialties": ["x"] * 21}]}, "categories.0.specialties", "at most"),
        ({"markets": ["AE", "AE"]}, "markets", "'AE' is listed more than once"),
        ({"markets": ["XX"]}, "markets.0", "neither an ISO 3166-1"),
        ({"sectors": ["G26"]}, "sectors.0", "belongs to section C"),
        ({"languages": []}, "languages", "at least 1 item"),
        ({"capacity": 0}, "capacity", "greater than or equal to 1"),
        ({"capacity": 1001}, "capacity", "less than or equal to 1000"),
        ({"response_window_hours": 721}, "response_window_hours", "less than or equal to 720"),
        ({"offer_strategy": "parallel", "parallel_offers": 11}, "parallel_offers", "less than or equal to 10"),
        ({"name": ""}, "name", "at least 1 character"),
    ],
)
def test_partner_profile_rules(change: dict[str, Any], location: str, problem: str) -> None:
    assert problem in errors(PartnerProfile, {**example(PartnerProfile), **change})[location]


def test_parallel_strategy_allows_several_offers() -> None:
    partner = PartnerProfile.model_validate(
        {**example(PartnerProfile), "offer_strategy": "parallel", "parallel_offers": 3}
    )
    assert partner.parallel_offers == 3


@pytest.mark.parametrize("url", ["http://localhost:8080/hook", "http://127.0.0.1/hook", "https://hooks.example.hk/x"])
def test_plain_http_webhooks_only_for_the_local_machine(url: str) -> None:
    partner = PartnerProfile.model_validate({**example(PartnerProfile), "delivery": {"webhook_url": url}})
    assert str(partner.delivery.webhook_url) == url


@pytest.mark.parametrize("partner_id", ["harbour-legal", "a1", "0-" + "x" * 61])
def test_partner_ids(partner_id: str) -> None:
    assert PartnerRecord.model_validate({**example(PartnerRecord), "id": partner_id}).id == partner_id


@pytest.mark.parametrize("partner_id", ["", "a", "-legal", "Harbour", "harbour_legal", "x" * 64])
def test_bad_partner_ids(partner_id: str) -> None:
    assert "id" in errors(PartnerRecord, {**example(PartnerRecord), "id": partner_id})


def test_partner_record_requires_an_id() -> None:
    data = example(PartnerRecord)
    del data["id"]
    assert errors(PartnerRecord, data) == {"id": "Field required"}
