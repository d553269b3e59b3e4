"""The whole intake HTTP app in process (middleware, authentication, routes, problem handlers, console) on the
in-memory stores: a referral from registration to acceptance, every kind of problem answer, Idempotency-Key
retries, the console's assignment, API keys, redelivery and dead-letter replay."""

import base64
from typing import Any

import httpx

from goglobal_contract.events import ReferralAssigned, ReferralSubmitted
from goglobal_contract.notification_events import RedeliveryRequested
from goglobal_shared.problems import PROBLEM_BASE, PROBLEM_JSON
from intake.auth.keys import Role
from intake.service_layer.ports import RequestFilter
from tests import factories
from tests.service.fakes import FakeDeadLetters, FakeNotifications, FakeProducer, FakeSessions, World
from tests.service.steps import LEGAL, offer, register_partner, unmatched


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(answer: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = answer.json()
    assert (body["status"], body["type"]) == (status, PROBLEM_BASE + slug), body
    return body


async def operator(world: World) -> str:
    """The first operator key, made the way `goglobal operators create-key` makes it."""
    return (await world.api_keys.create(Role.OPERATOR, "duty-officer", "test", world.intake.clock())).plaintext


async def enterprise_key(http: httpx.AsyncClient, consent: bool = True) -> str:
    answer = await http.post("/v1/enterprises", json=factories.enterprise(consent))
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["api_key"]["api_key"]
    return key


async def partner_key(http: httpx.AsyncClient, ops: str, partner_id: str) -> str:
    body = {k: v for k, v in factories.partner(partner_id, ["legal"], ["AE"]).items() if k != "id"}
    assert (await http.put(f"/v1/partners/{partner_id}", json=body, headers=bearer(ops))).status_code == 201
    answer = await http.post(f"/v1/partners/{partner_id}/api-keys", json={"name": "desk"}, headers=bearer(ops))
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["api_key"]
    return key


async def submitted_referral(http: httpx.AsyncClient, key: str) -> str:
    answer = await http.post("/v1/service-requests", json={"needs": [LEGAL]}, headers=bearer(key))
    assert answer.status_code == 201, answer.text
    referral_id: str = answer.json()["referrals"][0]["id"]
    return referral_id


async def test_register_submit_offer_and_the_partner_accepts(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    enterprise, partner = await enterprise_key(http), await partner_key(http, ops, "gulf-legal")
    referral_id = await submitted_referral(http, enterprise)
    assert [e.subject for e in world.outbox.of_type(ReferralSubmitted.event_type)] == [referral_id]
    await offer(world, referral_id, "gulf-legal")  # what intake's consumer records of matching's decisions

    inbox = (await http.get("/v1/referrals", params={"status": "offered"}, headers=bearer(partner))).json()
    assert [r["id"] for r in inbox["items"]] == [referral_id]
    assert inbox["items"][0]["enterprise"]["legal_name_en"] is None  # anonymous until accepted
    accepted = await http.post(f"/v1/referrals/{referral_id}/accept", headers=bearer(partner))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["enterprise"]["contact"] is not None
    seen = (await http.get(f"/v1/referrals/{referral_id}", headers=bearer(enterprise))).json()
    assert (seen["status"], seen["partner_id"]) == ("accepted", "gulf-legal")


async def test_every_refusal_is_a_problem_document(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    enterprise, partner = await enterprise_key(http), await partner_key(http, ops, "gulf-legal")
    stranger = await partner_key(http, ops, "harbour-legal")
    referral_id = await submitted_referral(http, enterprise)
    await offer(world, referral_id, "gulf-legal")

    unauthenticated = await http.get("/v1/referrals")
    problem(unauthenticated, 401, "unauthenticated")
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    problem(await http.post(f"/v1/referrals/{referral_id}/accept", headers=bearer(enterprise)), 403, "forbidden")
    for missing in (referral_id, referral_id[:-2] + "ff"):  # not offered to it, or not there: the same answer
        problem(await http.get(f"/v1/referrals/{missing}", headers=bearer(stranger)), 404, "referral-not-found")
    early = await http.post(f"/v1/referrals/{referral_id}/start", headers=bearer(partner))
    assert "accept it first" in problem(early, 409, "conflict")["detail"]
    assign = await http.post(f"/v1/referrals/{referral_id}/assign", json={"partner_id": "nobody"}, headers=bearer(ops))
    assert "is not an active partner" in problem(assign, 409, "conflict")["detail"]
    empty = await http.post("/v1/service-requests", json={"needs": []}, headers=bearer(enterprise))
    assert [e["field"] for e in problem(empty, 422, "validation")["errors"]] == ["body.needs"]


async def test_use_case_refusals_answer_as_their_kind(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    body = factories.enterprise(seed=3)
    assert (await http.post("/v1/enterprises", json=body)).status_code == 201
    problem(await http.post("/v1/enterprises", json=body), 409, "already-registered")
    private = factories.partner("hook-legal", ["legal"], ["AE"], delivery={"webhook_url": "https://10.1.2.3/hook"})
    refused = await http.post("/v1/partners", json=private, headers=bearer(ops))
    assert [e["field"] for e in problem(refused, 422, "validation")["errors"]] == ["body.delivery.webhook_url"]
    upload = await http.post("/v1/partners/import", content=b"\x00\x01", headers=bearer(ops))
    problem(upload, 415, "unknown-import-format")
    problem(await http.get("/v1/partners/nobody-here", headers=bearer(ops)), 404, "partner-not-found")


async def test_a_retried_submission_gets_the_first_answer(http: httpx.AsyncClient, world: World) -> None:
    enterprise = await enterprise_key(http)
    headers = {**bearer(enterprise), "Idempotency-Key": "order-2026-001"}
    first = await http.post("/v1/service-requests", json={"needs": [LEGAL]}, headers=headers)
    again = await http.post("/v1/service-requests", json={"needs": [LEGAL]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(await world.requests.page(RequestFilter(), 10, None)) == 1
    other = await http.post("/v1/service-requests", json={"needs": [LEGAL, LEGAL]}, headers=headers)
    problem(other, 422, "idempotency-key-reused")


async def test_a_retried_acceptance_gets_the_first_answer_not_a_conflict(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    enterprise, partner = await enterprise_key(http), await partner_key(http, ops, "gulf-legal")
    referral_id = await submitted_referral(http, enterprise)
    await offer(world, referral_id, "gulf-legal")
    headers = {**bearer(partner), "Idempotency-Key": "accept-1"}
    first = await http.post(f"/v1/referrals/{referral_id}/accept", headers=headers)
    again = await http.post(f"/v1/referrals/{referral_id}/accept", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"


async def test_readiness_reports_the_fakes_up(http: httpx.AsyncClient) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and set(ready.json()["checks"].values()) == {"ok"}


async def test_the_console_assigns_through_the_same_use_case(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    enterprise = await enterprise_key(http)
    await register_partner(world, "gulf-legal")
    await register_partner(world, "sleepy-legal", active=False)
    referral_id = await submitted_referral(http, enterprise)
    await unmatched(world, referral_id)
    assert (await http.post("/console/login", data={"api_key": ops})).status_code == 303
    assert (await http.get("/console")).status_code == 200
    sessions = world.intake.sessions
    assert isinstance(sessions, FakeSessions)
    [session] = sessions.sessions.values()
    for partner_id, told in [("sleepy-legal", "is not an active partner"), ("gulf-legal", "assigned to gulf-legal")]:
        form = {"partner_id": partner_id, "csrf_token": session.csrf}
        assert (await http.post(f"/console/referrals/{referral_id}/assign", data=form)).status_code == 303
        flash = sessions.sessions[session.token_hash].flash
        assert flash is not None and told in flash.text
    assert [e.subject for e in world.outbox.of_type(ReferralAssigned.event_type)] == [referral_id]


async def test_a_key_is_revoked_by_its_owner_or_an_operator_only(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    mine, other = await enterprise_key(http), await enterprise_key(http)
    spare = (await http.post("/v1/api-keys", json={"name": "spare"}, headers=bearer(mine))).json()
    problem(await http.delete(f"/v1/api-keys/{spare['key_id']}", headers=bearer(other)), 404, "api-key-not-found")
    revoked = await http.delete(f"/v1/api-keys/{spare['key_id']}", headers=bearer(ops))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    problem(await http.get("/v1/api-keys", headers=bearer(spare["api_key"])), 401, "unauthenticated")


async def test_a_partner_asks_to_redeliver_its_own_deliveries_only(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    partner, other = await partner_key(http, ops, "gulf-legal"), await partner_key(http, ops, "harbour-legal")
    notifications = world.intake.notifications
    assert isinstance(notifications, FakeNotifications)
    notifications.deliveries["d-1"] = {"delivery_id": "d-1", "recipient_id": "gulf-legal"}
    problem(await http.post("/v1/deliveries/d-1/redeliver", headers=bearer(other)), 404, "delivery-not-found")
    asked = await http.post("/v1/deliveries/d-1/redeliver", headers=bearer(partner))
    assert asked.status_code == 202, asked.text
    [command] = notifications.commands
    assert isinstance(command.data, RedeliveryRequested)
    assert (command.data.request_id, command.data.delivery_ids) == (asked.json()["request_id"], ["d-1"])


async def test_an_operator_replays_a_dead_letter_to_its_topic(http: httpx.AsyncClient, world: World) -> None:
    ops = await operator(world)
    letters, producer = world.intake.dead_letters, world.intake.runtime.connections.producer
    assert isinstance(letters, FakeDeadLetters) and isinstance(producer, FakeProducer)
    letters.letters["goglobal.referrals:0:7"] = {
        "_id": "goglobal.referrals:0:7",
        "original_topic": "goglobal.referrals",
        "headers": [{"name": "ce_id", "value": base64.b64encode(b"e1").decode()}],
        "key": b"r1",
        "value": b"{}",
        "status": "open",
        "dead_lettered_at": world.intake.clock(),
    }
    missing = await http.post("/v1/dead-letters/nowhere:0:1/replay", headers=bearer(ops))
    problem(missing, 404, "dead-letter-not-found")
    replayed = await http.post("/v1/dead-letters/replay", json={}, headers=bearer(ops))
    assert replayed.json() == {"replayed": 1, "results": {"goglobal.referrals:0:7": "sent"}}
    assert producer.sent == [("goglobal.referrals", b"{}")]
    assert letters.letters["goglobal.referrals:0:7"]["status"] == "replayed"
