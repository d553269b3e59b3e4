"""Intake's API docs pages (/docs, /redoc) load nothing from another origin: their scripts, styles and icon are
served by intake itself. And the OpenAPI document tells of the 400 and 415 a JSON body can get.

In process, without the lifespan: these routes need neither the database nor the broker. tests/e2e/
test_api_docs_browser.py renders the pages in Chromium with every other origin unreachable.
"""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from intake.api.openapi import MALFORMED_JSON, NOT_JSON
from intake.app import create_app
from intake.settings import IntakeSettings

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
KINDS = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
IMPORT = "/v1/partners/import"  # reads its body itself (CSV, JSON or HSDS), with a 415 of its own


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(IntakeSettings()))  # runs no lifespan: no database, no broker
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        yield http


@pytest.fixture(scope="module")
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_docs_pages_load_every_asset_from_intake(client: httpx.AsyncClient, page: str, script: str) -> None:
    answer = await client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "://" not in answer.text, f"{page} names another origin:\n{answer.text}"
    policy = answer.headers["content-security-policy"]  # and the browser may load nothing from one
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "://" not in policy, policy
    assets = ASSET.findall(answer.text)
    assert any(a.endswith(f"/{script}") for a in assets), assets
    if page == "/docs":
        assert any(a.endswith("/swagger-ui.css") for a in assets), assets
        assert "'/openapi.json'" in answer.text
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        kind = next(k for suffix, k in KINDS.items() if asset.endswith(suffix))
        assert served.headers["content-type"].startswith(kind), (asset, served.headers["content-type"])
        assert len(served.content) > 1000, asset


async def test_the_bundled_swagger_ui_reads_openapi_3_1(client: httpx.AsyncClient, spec: dict[str, Any]) -> None:
    """Swagger UI before 5.0 answers "unable to render this definition" to a 3.1 document, which FastAPI writes."""
    assert spec["openapi"].startswith("3.1")
    bundle = (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.\d+\.\d+"', bundle)
    assert found is not None, "the bundle no longer says which Swagger UI it is"
    assert int(found.group(1)) >= 5, found.group(0)


async def test_an_asset_the_package_does_not_ship_is_a_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs/assets/nothing-here.js")).status_code == 404


def _json_body_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {}) and path != IMPORT
    ]


def test_every_json_body_documents_its_400_and_415(spec: dict[str, Any]) -> None:
    operations = _json_body_operations(spec)
    assert len(operations) >= 10, "fewer operations with a JSON body than intake has"
    for path, method, operation in operations:
        responses = operation["responses"]
        assert MALFORMED_JSON in responses["400"]["description"], f"{method.upper()} {path}"
        assert responses["415"]["description"] == NOT_JSON, f"{method.upper()} {path}"
        for status in ("400", "415"):
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, f"{method.upper()} {path} {status}"


def test_operations_without_a_json_body_document_no_415_of_it(spec: dict[str, Any]) -> None:
    with_body = {(path, method) for path, method, _ in _json_body_operations(spec)}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if (path, method) not in with_body:
                assert NOT_JSON not in operation["responses"].get("415", {}).get("description", ""), path
                assert MALFORMED_JSON not in operation["responses"].get("400", {}).get("description", ""), path
    assert "Neither CSV nor JSON" in spec["paths"][IMPORT]["post"]["responses"]["415"]["description"]
