"""The intake OpenAPI document: 3.1, every operation described, every request body with an example."""

from typing import Any

import pytest

from intake.api import openapi
from intake.api.middleware import IDEMPOTENCY_KEY_PATTERN
from intake.app import create_app
from intake.settings import IntakeSettings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(IntakeSettings()).openapi()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


def _has_example(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = _resolve(spec, media.get("schema", {}))
    if "examples" in schema or "example" in schema:
        return True
    properties = schema.get("properties", {})
    return bool(properties) and all("examples" in _resolve(spec, p) or "default" in p for p in properties.values())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_the_document_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations(spec)
        for media in op.get("requestBody", {}).get("content", {}).values()
        if not _has_example(spec, media)
    ]
    assert not missing, f"request bodies without an example: {missing}"


def test_every_post_takes_an_idempotency_key_and_every_operation_is_described(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        if method == "post":
            assert [p["name"] for p in op["parameters"]].count("Idempotency-Key") == 1, path
        assert op.get("summary") or op.get("description"), f"{method} {path} is undocumented"


def test_operations_that_need_a_key_declare_bearer_auth(spec: dict[str, Any]) -> None:
    open_operations = {("post", "/v1/enterprises"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}
    for path, method, op in operations(spec):
        if (method, path) not in open_operations:
            assert op.get("security"), f"{method.upper()} {path} declares no security"


def test_every_error_is_documented_as_a_problem(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) < 400 or (path, status) == ("/readyz", "503"):  # /readyz: its report, not a problem
                continue
            schema = response["content"]["application/problem+json"]["schema"]
            expected = "ValidationProblem" if status == "422" else "Problem"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, f"{method.upper()} {path} {status}"
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_keys_roles_bodies_and_idempotency_keys_have_their_errors_documented(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        where, responses = f"{method.upper()} {path}", op["responses"]
        assert ("401" in responses) == bool(op.get("security")), where
        if method in {"post", "put", "patch"}:
            assert "413" in responses, where
        if method == "post":
            assert {"400", "409", "422"} <= responses.keys(), where
            header = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
            assert header["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN, where
    assert "403" not in spec["paths"]["/v1/api-keys"]["get"]["responses"], "any key may list its own keys"
    assert "403" in spec["paths"]["/v1/deliveries"]["get"]["responses"], "enterprises may not"
    assert {"200", "201"} <= spec["paths"]["/v1/partners/{partner_id}"]["put"]["responses"].keys()
    assert "415" in spec["paths"]["/v1/partners/import"]["post"]["responses"]


def test_unused_schemas_go_even_when_one_refers_to_the_other() -> None:
    """FastAPI's ValidationError is referred to only by its HTTPValidationError: both go, whichever is looked at
    first (`Inner` sorts first here, and is still referred to then)."""
    inner = {"type": "object"}
    outer = {"properties": {"detail": {"$ref": "#/components/schemas/Inner"}}}
    used = {"type": "string"}
    schema = {"paths": {}, "components": {"schemas": {"Outer": outer, "Inner": inner, "Used": used}}}
    schema["paths"] = {"/x": {"get": {"responses": {"200": {"$ref": "#/components/schemas/Used"}}}}}
    openapi._drop_unused(schema, {"Outer", "Inner", "Used"})
    assert schema["components"]["schemas"] == {"Used": used}
