"""Nothing accepted is lost: requests accepted while the broker is down are all published once it is back."""

from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from goglobal_contract.envelope import from_kafka
from tests import factories
from tests.support import Namespace, ServiceProcess, eventually, native_infra
from tests.world import bearer

REQUESTS = 200
ONE_NEED = {"needs": [{"service_category": "tax", "target_markets": ["SG"]}]}


async def test_requests_accepted_while_kafka_is_down_are_published_exactly_once(
    namespace: Namespace, tmp_path: Path
) -> None:
    if not namespace.infra.native:
        pytest.skip("stops the broker: only with the native stack of deploy/local/infra.py")
    intake = ServiceProcess("intake", namespace, tmp_path).start()
    try:
        await intake.wait_ready()
        async with httpx.AsyncClient(base_url=intake.url, timeout=30) as http:
            key = (await http.post("/v1/enterprises", json=factories.enterprise())).json()["api_key"]["api_key"]
            native_infra("down", "kafka")
            try:
                referral_ids = set()
                for _ in range(REQUESTS):
                    answer = await http.post("/v1/service-requests", json=ONE_NEED, headers=bearer(key))
                    assert answer.status_code == 201, answer.text
                    referral_ids.add(answer.json()["referrals"][0]["id"])
                ready = await http.get("/readyz")
                # Still ready: the outbox holds what the broker cannot take yet, and the report says why it waits.
                assert ready.status_code == 200 and ready.json()["checks"]["kafka"] != "ok"
            finally:
                native_infra("up", "kafka")
        seen = await submitted_events(namespace, expected=REQUESTS)
        assert sorted(seen) == sorted(referral_ids), "every accepted referral is published, and only once"
    finally:
        intake.kill()


async def submitted_events(namespace: Namespace, expected: int) -> list[str]:
    """Subjects of every `referral.submitted` event on the topic, duplicates included (by event id)."""
    consumer = AIOKafkaConsumer(
        namespace.topic("goglobal.referrals"), bootstrap_servers=namespace.infra.kafka, auto_offset_reset="earliest"
    )
    await consumer.start()
    by_id: dict[str, str] = {}
    duplicates: list[str] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                event = from_kafka(record.key, record.value, list(record.headers))
                if event.id in by_id:
                    duplicates.append(event.id)
                by_id[event.id] = event.subject
        return len(by_id) >= expected

    try:
        await eventually(collect, f"{expected} submitted events", deadline_s=120)
        assert not duplicates, f"events published twice: {duplicates[:5]}"
    finally:
        await consumer.stop()
    return list(by_id.values())
