"""A two-need request goes through intake, Kafka, matching and notifications on the real broker and database,
and a partner takes one referral to completion."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests import factories
from tests.support import Namespace, eventually
from tests.webhook_receiver import Receiver, running
from tests.world import World, bearer, running_world

PARTNERS = [
    ("gulf-legal", ["legal"], ["MIDDLE_EAST"]),
    ("harbour-counsel", ["legal"], ["AE", "SA"]),
    ("pearl-treasury", ["banking_and_fund_management"], ["AE", "GB"]),
]


@pytest.fixture
async def world(namespace: Namespace, tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(namespace, tmp_path) as system:
        yield system


async def read_events(
    namespace: Namespace, key: str, count: int, topic: str = "goglobal.referrals"
) -> list[CloudEvent]:
    consumer = AIOKafkaConsumer(
        namespace.topic(topic), bootstrap_servers=namespace.infra.kafka, auto_offset_reset="earliest"
    )  # no group: reads every partition, commits nothing
    await consumer.start()
    found: list[CloudEvent] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for r in records:
                if r.key == key.encode():
                    msg = KafkaMessage(headers=dict(r.headers), key=r.key, value=r.value)
                    found.append(from_binary(msg, JSONFormat(), CloudEvent))  # type: ignore[arg-type]
        return len(found) >= count

    try:
        await eventually(collect, f"{count} events for {key}")
    finally:
        await consumer.stop()
    return found


async def setup_directory(world: World, receiver: Receiver) -> str:
    """Adds the partners (`harbour-counsel` with a webhook to `receiver`) and returns its key."""
    for partner_id, categories, markets in PARTNERS:
        await world.add_partner(partner_id, categories, markets, receiver if partner_id == "harbour-counsel" else None)
    return world.partner_keys["harbour-counsel"]


async def test_two_need_request_is_matched_offered_and_completed(world: World, namespace: Namespace) -> None:
    http, enterprise_key = world.http, world.enterprise.key
    receiver = Receiver()
    async with running(receiver):
        partner_key = await setup_directory(world, receiver)

        # The directory reaches matching through partner.upserted events; wait until it can match.
        async def submitted_and_offered() -> dict[str, Any] | None:
            created = await http.post("/v1/service-requests", json=factories.TWO_NEEDS, headers=bearer(enterprise_key))
            assert created.status_code == 201, created.text
            legal_id = created.json()["referrals"][0]["id"]
            body = await eventually(lambda: _settled(http, enterprise_key, legal_id), "the legal referral to settle")
            return created.json() if body["status"] == "offered" else None

        request = await eventually(submitted_and_offered, "a request whose referrals get offers", deadline_s=60)
        legal, treasury = (r["id"] for r in request["referrals"])
        assert [r["status"] for r in request["referrals"]] == ["submitted", "submitted"]

        offered = await world.until(legal, "offered")
        assert offered["open_offers"] == ["harbour-counsel"]  # exact coverage of AE and SA beats the region
        assert offered["candidates"][0]["reasons"][:2] == ["offers legal", "covers AE and SA"]
        assert (await world.until(treasury, "offered"))["open_offers"] == ["pearl-treasury"]

        # Before accepting, the partner sees the need but not who the enterprise is.
        seen = (await http.get(f"/v1/referrals/{legal}", headers=bearer(partner_key))).json()
        assert seen["enterprise"]["legal_name_en"] is None and seen["enterprise"]["contact"] is None
        assert seen["need"]["target_markets"] == ["AE", "SA"]

        for action, body in [
            ("accept", None),
            ("start", None),
            ("complete", {"outcome": "engaged", "notes": "Entity formed in DIFC"}),
        ]:
            answer = await http.post(f"/v1/referrals/{legal}/{action}", json=body, headers=bearer(partner_key))
            assert answer.status_code == 200, answer.text
        accepted_view = answer.json()
        assert accepted_view["enterprise"]["contact"]["email"] == "li.wei@brightsolar.example.cn"
        rated = await http.post(
            f"/v1/referrals/{legal}/rating", json={"score": 5, "comment": "fast"}, headers=bearer(enterprise_key)
        )
        assert rated.status_code == 200, rated.text

        history = (await http.get(f"/v1/referrals/{legal}/history", headers=bearer(enterprise_key))).json()
        assert [h["action"] for h in history] == [
            "submitted",
            "matched",
            "offered",
            "accepted",
            "in_progress",
            "completed",
            "rated",
        ]
        assert history[3]["actor"] == "partner:harbour-counsel"

        summary = (await http.get(f"/v1/service-requests/{request['id']}", headers=bearer(enterprise_key))).json()
        assert summary["progress"] == {"completed": 1, "offered": 1}

        # The partner's own webhook endpoint got the signed offer (verified with its secret) ...
        async def signed_offer() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in receiver.handled.values()
                    if e["subject"] == legal and e["type"] == "hk.goglobal.partner.referral_offered.v1"
                ),
                None,
            )

        offer = await eventually(signed_offer, "the signed offer at the partner's webhook")
        assert offer["data"]["need"]["target_markets"] == ["AE", "SA"] and receiver.rejected == 0

        # ... and its inbox lists it, for partners without any integration.
        async def in_inbox() -> bool:
            items = (await http.get("/v1/inbox", headers=bearer(partner_key))).json()
            return any(i["referral_id"] == legal and i["kind"] == "referral_offered" for i in items)

        await eventually(in_inbox, "the offer in the partner's inbox")

    events = await read_events(namespace, legal, count=10)
    types = [e.get_type().removeprefix("hk.goglobal.") for e in events]
    assert [t for t in types if t.startswith("referral.")] == [
        "referral.submitted.v1",
        "referral.matched.v1",
        "referral.offered.v1",
        "referral.accepted.v1",
        "referral.started.v1",
        "referral.completed.v1",
        "referral.rated.v1",
    ]
    # What the partner is told travels with the lifecycle, written by intake once it recorded each step.
    told = [t for t in types if t.startswith("partner.")]
    assert told == ["partner.referral_offered.v1", "partner.referral_accepted.v1", "partner.referral_rated.v1"]
    assert types.index("partner.referral_offered.v1") > types.index("referral.offered.v1")
    assert all(e.get_subject() == legal for e in events)


async def _settled(http: httpx.AsyncClient, key: str, referral_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/v1/referrals/{referral_id}", headers=bearer(key))).json()
    return body if body["status"] in {"offered", "unmatched"} else None


async def test_sigterm_stops_every_service_cleanly(world: World) -> None:
    for service in world.services.values():
        assert service.terminate() == 0, service.log_tail()
