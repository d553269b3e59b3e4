"""A referral goes through intake, Kafka, matching and notifications, on the real broker and database."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pymongo import AsyncMongoClient

from tests.support import Namespace, ServiceProcess, eventually

pytestmark = pytest.mark.integration

PARTNERS = [
    {"id": "lexbridge-legal", "name": "LexBridge Legal", "categories": ["legal"], "markets": ["MIDDLE_EAST"]},
    {"id": "harbour-counsel", "name": "Harbour Counsel", "categories": ["legal"], "markets": ["AE", "SA"]},
    {"id": "pearl-accounting", "name": "Pearl Accounting", "categories": ["accounting"], "markets": ["AE"]},
]
REFERRAL = {"enterprise_name": "Shenzhen Bright Solar", "service_category": "legal", "target_markets": ["AE", "SA"]}


@pytest.fixture
def partners_file(tmp_path: Path) -> Path:
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(PARTNERS))
    return path


@pytest.fixture
async def system(namespace: Namespace, partners_file: Path, tmp_path: Path) -> AsyncIterator[dict[str, ServiceProcess]]:
    seed = {"GOGLOBAL_MATCHING_SEED_PARTNERS_FILE": str(partners_file)}
    services = {
        "intake": ServiceProcess("intake", namespace, tmp_path),
        "matching": ServiceProcess("matching", namespace, tmp_path, seed),
        "notifications": ServiceProcess("notifications", namespace, tmp_path),
    }
    for service in services.values():
        service.start()
    try:
        for service in services.values():
            await service.wait_ready()
        yield services
    finally:
        for service in services.values():
            if service.proc and service.proc.poll() is None:
                service.kill()


async def read_events(namespace: Namespace, referral_id: str, count: int) -> list[CloudEvent]:
    topic = namespace.topic("goglobal.referrals")
    # No group: the consumer reads every partition from the start and commits nothing.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=namespace.infra.kafka, auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[CloudEvent] = []

        async def collect() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    if r.key == referral_id.encode():
                        msg = KafkaMessage(headers=dict(r.headers), key=r.key, value=r.value)
                        found.append(from_binary(msg, JSONFormat(), CloudEvent))  # type: ignore[arg-type]
            return len(found) >= count

        await eventually(collect, f"{count} events for {referral_id}")
        return found
    finally:
        await consumer.stop()


async def test_referral_is_matched_and_partner_notified(
    system: dict[str, ServiceProcess], namespace: Namespace
) -> None:
    intake = system["intake"].url
    async with httpx.AsyncClient(base_url=intake, timeout=10) as http:
        created = await http.post("/v1/referrals", json=REFERRAL)
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        assert created.json()["status"] == "submitted"

        async def matched() -> dict[str, object] | None:
            body: dict[str, object] = (await http.get(f"/v1/referrals/{referral_id}")).json()
            return body if body["status"] == "matched" else None

        referral = await eventually(matched, "the referral to be matched")
    # Exact country coverage beats region coverage; the score says so.
    assert referral["matched_partner"] == {
        "partner_id": "harbour-counsel",
        "partner_name": "Harbour Counsel",
        "score": 1.0,
        "reasons": ["offers legal", "covers AE and SA"],
    }

    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    notes = mongo[namespace.database("notifications")]["notifications"]

    async def notification() -> dict[str, object] | None:
        return await notes.find_one({"referral_id": referral_id})

    note = await eventually(notification, "the partner's notification")
    assert note["recipient_id"] == "harbour-counsel"
    await mongo.close()

    events = await read_events(namespace, referral_id, count=2)
    types = [e.get_type() for e in events]
    assert types == ["hk.goglobal.referral.submitted.v1", "hk.goglobal.referral.matched.v1"]
    assert all(e.get_subject() == referral_id for e in events)
    submitted, matched_event = (json_data(e) for e in events)
    assert submitted == {
        **REFERRAL,
        "referral_id": referral_id,
        "description": "",
        "submitted_at": submitted["submitted_at"],
    }
    assert matched_event["partner_id"] == "harbour-counsel"


def json_data(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    assert isinstance(data, dict), f"event data is not a JSON object: {data!r}"
    return data


async def test_unknown_referral_is_a_problem_document(system: dict[str, ServiceProcess]) -> None:
    async with httpx.AsyncClient(base_url=system["intake"].url, timeout=10) as http:
        missing = await http.get("/v1/referrals/" + "0" * 32)
        invalid = await http.post("/v1/referrals", json={**REFERRAL, "target_markets": ["XX1"], "status": "closed"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert invalid.status_code == 422
    fields = {e["field"] for e in invalid.json()["errors"]}
    assert fields == {"body.target_markets.0", "body.status"}


async def test_sigterm_stops_every_service_cleanly(system: dict[str, ServiceProcess]) -> None:
    for service in system.values():
        assert service.terminate() == 0, service.log_tail()
