"""Errors that say what is wrong: a body that is not valid JSON (400, with the line and column), a body that is not
JSON at all (415), and a partner acting on an offer it has not accepted (409 saying so), each documented in the
OpenAPI document. Intake and matching run as real processes on the real broker and database, once for the module.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.intake_helpers import assert_problem
from tests.support import Infra, eventually
from tests.world import Enterprise, bearer, new_namespace, running_world

PARTNER = "errors-legal"
PROBLEMS = "https://goglobal.hk/problems/"
NEED = {"service_category": "legal", "target_markets": ["AE"], "description": "Dubai subsidiary"}
# Line 3 of this body lacks the ':' after "description": Python's parser stops at its 19th character.
MALFORMED = b'{"needs": [{"service_category": "legal",\n  "target_markets": ["AE"],\n  "description" "Dubai"}]}'


@dataclass(frozen=True)
class Rig:
    http: httpx.AsyncClient
    operator: str
    partner: str  # a key of PARTNER
    enterprise: Enterprise
    spec: dict[str, Any]


@pytest.fixture(scope="module")
async def rig(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    log_dir = tmp_path_factory.mktemp("intake-errors")
    async with running_world(new_namespace(infra), log_dir, names=["intake", "matching"]) as world:
        partner = await world.add_partner(PARTNER, ["legal"], ["AE"])
        enterprise = await world.register_enterprise(True, "contact@enterprise.example.cn")
        spec = (await world.http.get("/openapi.json")).json()
        yield Rig(world.http, world.operator, partner, enterprise, spec)


async def own_requests(rig: Rig) -> list[str]:
    listed = await rig.http.get("/v1/service-requests", params={"limit": 100}, headers=rig.enterprise.auth)
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["items"]]


def documented(rig: Rig, method: str, path: str, status: int) -> str:
    description: str = rig.spec["paths"][path][method]["responses"][str(status)]["description"]
    return description


# -- bodies -------------------------------------------------------------------------------------------------------


async def test_malformed_json_is_a_400_naming_line_and_column(rig: Rig) -> None:
    before = await own_requests(rig)
    headers = {**rig.enterprise.auth, "Content-Type": "application/json"}
    answer = await rig.http.post("/v1/service-requests", content=MALFORMED, headers=headers)
    problem = assert_problem(answer, 400)
    assert problem["type"] == PROBLEMS + "malformed-json"
    assert problem["detail"] == "the body is not valid JSON: Expecting ':' delimiter at line 3, column 17", problem
    assert "errors" not in problem  # not a 422 naming `body.<offset>`
    assert "line and column" in documented(rig, "post", "/v1/service-requests", 400)
    assert await own_requests(rig) == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"name": "\xff"}', "byte 11 cannot be decoded as utf-8"),
        (b"[" * 5000 + b"]" * 5000, "nests arrays or objects too deeply"),
        (b'{"name": "crm",}', "Expecting property name enclosed in double quotes at line 1, column 16"),
        (b'{"name": "crm"} trailing', "Extra data at line 1, column 17"),
    ],
    ids=["not-utf8", "too-deep", "trailing-comma", "trailing-text"],
)
async def test_every_unreadable_json_body_is_a_400(rig: Rig, body: bytes, reason: str) -> None:
    headers = {**bearer(rig.operator), "Content-Type": "application/json"}
    problem = assert_problem(await rig.http.post("/v1/api-keys", content=body, headers=headers), 400)
    assert problem["type"] == PROBLEMS + "malformed-json"
    assert reason in problem["detail"], problem


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "sent as 'text/plain'"),
        ("application/x-www-form-urlencoded", "sent as 'application/x-www-form-urlencoded'"),
        ("text/json; charset=utf-8", "sent as 'text/json'"),
        (None, "sent without a Content-Type"),
    ],
)
async def test_a_body_that_is_not_json_is_a_415(rig: Rig, content_type: str | None, named: str) -> None:
    before = await own_requests(rig)
    headers = {**rig.enterprise.auth, **({"Content-Type": content_type} if content_type else {})}
    body = httpx.Request("POST", "/", json={"needs": [NEED]}).content  # valid JSON: only its label is wrong
    answer = await rig.http.post("/v1/service-requests", content=body, headers=headers)
    if content_type is None:
        assert "content-type" not in answer.request.headers
    problem = assert_problem(answer, 415)
    assert problem["type"] == PROBLEMS + "unsupported-media-type"
    assert named in problem["detail"] and "Content-Type: application/json" in problem["detail"], problem
    assert "Content-Type: application/json" in documented(rig, "post", "/v1/service-requests", 415)
    assert await own_requests(rig) == before


async def test_json_under_any_json_media_type_is_accepted(rig: Rig) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        body = httpx.Request("POST", "/", json={"needs": [NEED]}).content
        headers = {**rig.enterprise.auth, "Content-Type": content_type}
        answer = await rig.http.post("/v1/service-requests", content=body, headers=headers)
        assert answer.status_code == 201, (content_type, answer.text)


async def test_a_415_comes_after_the_key_is_checked(rig: Rig) -> None:
    answer = await rig.http.post("/v1/service-requests", content=b"needs", headers={"Content-Type": "text/plain"})
    assert_problem(answer, 401)


async def test_the_csv_import_still_takes_csv(rig: Rig) -> None:
    csv = (
        "id,name,categories,markets,languages,capacity,contact_name,contact_email,contact_phone\n"
        "errors-csv-one,CSV One,accounting,GB,en,5,Chan Tai Man,ops@one.example.hk,+85221234567\n"
    )
    headers = {**bearer(rig.operator), "Content-Type": "text/csv"}
    answer = await rig.http.post("/v1/partners/import", content=csv.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["created"] + report["updated"] == 1 and report["failed"] == 0, report
    assert (await rig.http.get("/v1/partners/errors-csv-one", headers=bearer(rig.operator))).status_code == 200


# -- referrals ----------------------------------------------------------------------------------------------------


async def test_a_partner_acting_on_an_offer_it_has_not_accepted_is_told_to_accept_first(rig: Rig) -> None:
    submitted = await rig.http.post("/v1/service-requests", json={"needs": [NEED]}, headers=rig.enterprise.auth)
    assert submitted.status_code == 201, submitted.text
    referral_id = submitted.json()["referrals"][0]["id"]
    partner = bearer(rig.partner)

    async def offered() -> bool:
        answer = await rig.http.get(f"/v1/referrals/{referral_id}", headers=partner)
        return answer.status_code == 200 and answer.json()["status"] == "offered"

    await eventually(offered, f"referral {referral_id} to be offered to {PARTNER}")
    completion = {"outcome": "engaged", "notes": "Company set up in DMCC"}
    for action, body in (("complete", completion), ("start", None)):
        answer = await rig.http.post(f"/v1/referrals/{referral_id}/{action}", json=body, headers=partner)
        problem = assert_problem(answer, 409)
        assert problem["detail"].startswith("this referral is offered to you, not accepted: accept it first"), problem
        assert f"then {action} it" in problem["detail"]
        assert "only the partner that accepted" not in problem["detail"]
    unchanged = await rig.http.get(f"/v1/referrals/{referral_id}", headers=partner)
    assert unchanged.json()["status"] == "offered", unchanged.text

    for action, body in (("accept", None), ("start", None), ("complete", completion)):
        answer = await rig.http.post(f"/v1/referrals/{referral_id}/{action}", json=body, headers=partner)
        assert answer.status_code == 200, (action, answer.text)
    assert answer.json()["status"] == "completed"
