"""One explicit request per bug the Schemathesis run found (plain httpx against intake running as a real process):
each test names the bug it guards (all fixed on 2026-11-26).

The intake OpenAPI document is the contract partners and enterprises build against: an answer it does not
describe (status, media type, body) and a request it calls valid but the API refuses are bugs of the API.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests import factories
from tests.support import Infra
from tests.world import Enterprise, World, bearer, new_namespace, running_world

PROBLEM_JSON = "application/problem+json"


@dataclass
class Intake:
    """Intake alone (the shared World with one service), and its OpenAPI document."""

    world: World
    spec: dict[str, Any]

    @property
    def http(self) -> httpx.AsyncClient:
        return self.world.http

    @property
    def operator(self) -> dict[str, str]:
        return bearer(self.world.operator)

    @property
    def enterprise(self) -> Enterprise:
        return self.world.enterprise

    def responses(self, method: str, path: str) -> dict[str, Any]:
        documented: dict[str, Any] = self.spec["paths"][path][method.lower()]["responses"]
        return documented

    def validator(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        """A validator for a schema of the document (its `$ref`s resolve against the document's components)."""
        return jsonschema_rs.Draft202012Validator({**schema, "components": self.spec["components"]})

    def request_schema(self, method: str, path: str) -> dict[str, Any]:
        body: dict[str, Any] = self.spec["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
        return dict(body["schema"])


@pytest.fixture(scope="module")
async def intake(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("regressions"), names=["intake"]) as world:
        yield Intake(world, (await world.http.get("/openapi.json")).json())


def assert_documented(intake: Intake, method: str, path: str, answer: httpx.Response) -> dict[str, Any]:
    """`answer`'s status is one the document gives for the operation; returns that response's description."""
    responses = intake.responses(method, path)
    status = str(answer.status_code)
    assert status in responses, f"{method} {path} answered {status}; documented: {sorted(responses)}"
    documented: dict[str, Any] = responses[status]
    return documented


def assert_conforms(intake: Intake, documented: dict[str, Any], answer: httpx.Response) -> None:
    """`answer`'s media type is documented for its status, and its body matches the schema given there."""
    media_type = answer.headers["content-type"].split(";")[0].strip()
    content = documented.get("content", {})
    assert media_type in content, f"answered as {media_type}; documented as {sorted(content)}"
    errors = [e.message for e in intake.validator(content[media_type]["schema"]).iter_errors(answer.json())]
    assert not errors, f"the body does not match the documented schema: {errors}\n{answer.text}"


# -- errors as the document describes them ----------------------------------------------------------------------


async def test_a_not_found_answer_has_the_documented_media_type(intake: Intake) -> None:
    """Regression [problem-media-type]: errors were served as application/problem+json but documented as
    application/json."""
    path = "/v1/service-requests/{request_id}"
    answer = await intake.http.get(f"/v1/service-requests/{uuid.uuid4().hex}", headers=intake.enterprise.auth)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert PROBLEM_JSON in assert_documented(intake, "GET", path, answer).get("content", {})


async def test_a_request_without_a_key_gets_a_documented_401(intake: Intake) -> None:
    """Regression [undocumented-401]: a missing, unknown or revoked key answered a 401 no operation documented."""
    answer = await intake.http.get("/v1/referrals")
    assert answer.status_code == 401
    assert_documented(intake, "GET", "/v1/referrals", answer)


async def test_a_revoked_or_unknown_key_gets_a_documented_401(intake: Intake) -> None:
    """Regression [undocumented-401]: a missing, unknown or revoked key answered a 401 no operation documented."""
    answer = await intake.http.post(
        "/v1/service-requests", json=factories.TWO_NEEDS, headers=bearer(f"gg_{'0' * 16}_{'A' * 43}")
    )
    assert answer.status_code == 401
    assert_documented(intake, "POST", "/v1/service-requests", answer)


async def test_a_key_of_another_role_gets_a_documented_403(intake: Intake) -> None:
    """Regression [undocumented-403]: a key of the wrong role answered a 403 no operation documented."""
    answer = await intake.http.get("/v1/partners", headers=intake.enterprise.auth)
    assert answer.status_code == 403
    assert_documented(intake, "GET", "/v1/partners", answer)


async def test_an_operator_submitting_a_request_gets_a_documented_403(intake: Intake) -> None:
    """Regression [undocumented-403]: a key of the wrong role answered a 403 no operation documented."""
    answer = await intake.http.post("/v1/service-requests", json=factories.TWO_NEEDS, headers=intake.operator)
    assert answer.status_code == 403
    assert_documented(intake, "POST", "/v1/service-requests", answer)


async def test_a_validation_error_matches_the_documented_422(intake: Intake) -> None:
    """Regression [validation-422-schema]: 422 was documented as FastAPI's HTTPValidationError, not as the RFC 9457
    problem (with `errors`) it is."""
    answer = await intake.http.post("/v1/api-keys", json={"name": ""}, headers=intake.enterprise.auth)
    assert answer.status_code == 422
    documented = assert_documented(intake, "POST", "/v1/api-keys", answer)
    content = documented.get("content", {})
    # Whatever media type the fix documents, the body must match the schema it gives.
    schema = next(iter(content.values()))["schema"]
    errors = [e.message for e in intake.validator(schema).iter_errors(answer.json())]
    assert not errors, f"documented 422 schema {schema} does not describe {answer.text}: {errors}"


async def test_a_body_that_is_not_utf8_gets_a_documented_answer(intake: Intake) -> None:
    """Regression [non-utf8-body-400]: a body that is not UTF-8 answered an undocumented 400 (about:blank)."""
    answer = await intake.http.post(
        "/v1/enterprises", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert_documented(intake, "POST", "/v1/enterprises", answer)


# -- answers the middleware and the routes give without the document saying so ------------------------------------


async def test_put_that_creates_a_partner_answers_a_documented_status(intake: Intake) -> None:
    """Regression [put-partner-201]: PUT of a new partner answered 201, only 200 was documented."""
    partner_id = f"new-{uuid.uuid4().hex[:10]}"
    body = {k: v for k, v in factories.partner(partner_id, ["legal"], ["AE"]).items() if k != "id"}
    answer = await intake.http.put(f"/v1/partners/{partner_id}", json=body, headers=intake.operator)
    assert answer.status_code in (200, 201), answer.text
    assert_conforms(intake, assert_documented(intake, "PUT", "/v1/partners/{partner_id}", answer), answer)


async def test_an_oversized_body_gets_a_documented_413(intake: Intake) -> None:
    """Regression [undocumented-413]: an oversized body answered a 413 no operation documented."""
    oversized = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    answer = await intake.http.post(
        "/v1/api-keys/operators", content=oversized, headers={**intake.operator, "content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert_documented(intake, "POST", "/v1/api-keys/operators", answer)


async def test_the_idempotency_key_rule_is_the_documented_one(intake: Intake) -> None:
    """Regression [idempotency-key-400]: Idempotency-Key outside visible ASCII got an undocumented 400; its pattern was
    not documented. The middleware takes 1-255 visible ASCII characters: the header's documented pattern must refuse 'a
    b' too, and the 400 must be documented."""
    path = "/v1/api-keys"
    answer = await intake.http.post(
        path, json={"name": "spare"}, headers={**intake.enterprise.auth, "Idempotency-Key": "a b"}
    )
    assert answer.status_code == 400, answer.text
    header = next(p for p in intake.spec["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert not intake.validator(header["schema"]).is_valid("a b"), f"documented as {header['schema']}"
    assert_documented(intake, "POST", path, answer)


async def test_an_import_in_an_unknown_format_gets_a_documented_415(intake: Intake) -> None:
    """Regression [import-415]: an import of an unknown format answered an undocumented 415."""
    answer = await intake.http.post(
        "/v1/partners/import", content=b"hello", headers={**intake.operator, "content-type": "text/plain"}
    )
    assert answer.status_code == 415
    assert_documented(intake, "POST", "/v1/partners/import", answer)


async def test_readiness_documents_its_not_ready_answer(intake: Intake) -> None:
    """Regression [readyz-503]: /readyz answered 503 when a dependency was away, only 200 was documented. GET /readyz
    answers 503 whenever a dependency is away (goglobal_shared/health.py); the document must say so. The broker is
    shared with other suites, so whichever of the two this answer is, it must be the documented one."""
    assert "503" in intake.responses("GET", "/readyz"), sorted(intake.responses("GET", "/readyz"))
    answer = await intake.http.get("/readyz")
    assert answer.status_code in (200, 503), answer.text
    assert_conforms(intake, assert_documented(intake, "GET", "/readyz", answer), answer)


# -- requests the document calls valid, refused with 422 --------------------------------------------------------

NEED = {"service_category": "legal", "target_markets": ["AE"], "description": "Dubai subsidiary"}
REFUSED_BUT_DOCUMENTED_VALID = [
    pytest.param("target_markets", {"needs": [{**NEED, "target_markets": ["nil"]}]}, id="market-code"),
    pytest.param("languages", {"needs": [{**NEED, "languages": ["!!"]}]}, id="language-tag"),
]
ENTERPRISE_FIELDS_REFUSED = [
    pytest.param("contact.phone", {"contact": {"name": "Li Wei", "email": "li@x.example.cn", "phone": "12345"}},
                 id="phone-e164"),
    pytest.param("uscc", {"uscc": "1"}, id="uscc"),
    pytest.param("sector", {"sector": "zz"}, id="isic-sector"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "body"), REFUSED_BUT_DOCUMENTED_VALID)
async def test_a_need_the_document_calls_valid_is_accepted(intake: Intake, field: str, body: dict[str, Any]) -> None:
    """Regression [undocumented-input-rules]: markets, language tags, phones, USCCs and sectors were validated but
    documented as plain strings."""
    path = "/v1/service-requests"
    answer = await intake.http.post(path, json=body, headers=intake.enterprise.auth)
    refused = answer.status_code == 422
    documented_valid = intake.validator(intake.request_schema("POST", path)).is_valid(body)
    assert not (refused and documented_valid), f"{field}: refused ({answer.text}) though the document allows {body}"


@pytest.mark.parametrize(("field", "change"), ENTERPRISE_FIELDS_REFUSED)
async def test_an_enterprise_the_document_calls_valid_is_accepted(
    intake: Intake, field: str, change: dict[str, Any]
) -> None:
    """Regression [undocumented-input-rules]: markets, language tags, phones, USCCs and sectors were validated but
    documented as plain strings."""
    path = "/v1/enterprises"
    body = {**factories.enterprise(), **change}
    answer = await intake.http.post(path, json=body)
    refused = answer.status_code == 422
    documented_valid = intake.validator(intake.request_schema("POST", path)).is_valid(body)
    assert not (refused and documented_valid), f"{field}: refused ({answer.text}) though the document allows it"


async def test_a_patch_the_document_calls_valid_is_accepted(intake: Intake) -> None:
    """Regression [patch-null-422]: PATCH /v1/enterprises/me documented its fields as nullable but refused null. null is
    refused (every profile field is required: none can be cleared), so no field may be documented as nullable."""
    path, body = "/v1/enterprises/me", {"hq_province": None}
    answer = await intake.http.patch(path, json=body, headers=intake.enterprise.auth)
    refused = answer.status_code == 422
    documented_valid = intake.validator(intake.request_schema("PATCH", path)).is_valid(body)
    assert not (refused and documented_valid), f"refused ({answer.text}) though the document allows {body}"
