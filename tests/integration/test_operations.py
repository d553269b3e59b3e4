"""What operators rely on: readiness that follows the broker, metrics that move with the traffic, dead letters
that can be listed and replayed (also from the CLI), and one trace id from the HTTP request to the webhook."""

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from goglobal_contract.envelope import from_kafka
from goglobal_shared.kafka import make_producer
from tests.support import Infra, eventually, native_infra
from tests.webhook_receiver import Receiver, running
from tests.world import World, bearer, new_namespace, running_world

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    env = {"intake": {"GOGLOBAL_FUNNEL_SAMPLE_INTERVAL_S": "1"}}
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("operations"), env) as w:
        yield w


async def metric(world: World, service: str, name: str, **labels: str) -> float:
    text = (await world.http.get(f"{world.services[service].url}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_metrics_move_as_a_referral_flows(world: World) -> None:
    await world.add_partner("metrics-firm", ["legal"], ["AE"])
    before_http = await metric(
        world, "intake", "goglobal_http_requests_total", route="/v1/service-requests", method="POST", status="201"
    )
    before_handled = await metric(
        world, "matching", "goglobal_events_consumed_total", type="hk.goglobal.referral.submitted.v1", outcome="handled"
    )
    answer = await world.http.post(
        "/v1/service-requests",
        headers=world.enterprise.auth,
        json={"needs": [{"service_category": "legal", "target_markets": ["AE"]}]},
    )
    assert answer.status_code == 201
    assert (
        await metric(
            world, "intake", "goglobal_http_requests_total", route="/v1/service-requests", method="POST", status="201"
        )
        == before_http + 1
    )

    async def matched() -> bool:
        handled = await metric(
            world,
            "matching",
            "goglobal_events_consumed_total",
            type="hk.goglobal.referral.submitted.v1",
            outcome="handled",
        )
        return handled == before_handled + 1

    await eventually(matched, "matching's consumed counter to move")

    async def offered_gauge() -> bool:  # sampled every few seconds
        return await metric(world, "intake", "goglobal_referrals", status="offered") >= 1

    await eventually(offered_gauge, "intake's referrals-by-status gauge")
    assert await metric(world, "matching", "goglobal_open_offers") >= 0
    assert "goglobal_outbox_backlog" in (await world.http.get(f"{world.services['intake'].url}/metrics")).text


async def test_one_trace_from_the_http_request_to_the_partner_webhook(world: World) -> None:
    receiver = Receiver()
    async with running(receiver):
        await world.add_partner("traced-firm", ["tax"], ["SG"], receiver)
        traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        answer = await world.http.post(
            "/v1/service-requests",
            json={"needs": [{"service_category": "tax", "target_markets": ["SG"]}]},
            headers={**world.enterprise.auth, "traceparent": traceparent},
        )
        rid = answer.json()["referrals"][0]["id"]

        async def delivered() -> str | None:
            event = next((i for i, e in receiver.handled.items() if e["subject"] == rid), None)
            return event

        webhook_id = await eventually(delivered, "the offer at the partner's webhook")
    assert receiver.traceparents[webhook_id].split("-")[1] == TRACE_ID
    assert receiver.handled[webhook_id]["traceparent"].split("-")[1] == TRACE_ID  # also in the CloudEvent


async def test_dead_letters_are_listed_replayed_and_handled_once(world: World) -> None:
    topic = world.namespace.topic("goglobal.referrals")
    producer = make_producer(world.namespace.infra.kafka, "test")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, b"not json at all", key=b"poison", headers=[("ce_type", b"hk.goglobal.referral.submitted.v1")]
        )
    finally:
        await producer.stop()
    ops = bearer(world.operator)

    async def listed() -> dict[str, Any] | None:
        letters = (await world.http.get("/v1/dead-letters", headers=ops, params={"topic": topic})).json()
        return next((x for x in letters if x["status"] == "open" and x["event_type"]), None)

    letter = await eventually(listed, "the poison record in the dead-letter list")
    assert letter["error_class"] == "InvalidEvent"
    detail = (await world.http.get(f"/v1/dead-letters/{letter['id']}", headers=ops)).json()
    assert detail["value"] == "not json at all" and detail["headers"]["ce_type"].endswith("submitted.v1")

    replayed = await world.http.post(f"/v1/dead-letters/{letter['id']}/replay", headers=ops)
    assert replayed.json() == {"replayed": 1, "results": {letter["id"]: "sent"}}
    after = (await world.http.get(f"/v1/dead-letters/{letter['id']}", headers=ops)).json()
    assert after["status"] == "replayed" and after["replays"][0]["by"] == "operator:test-operator"

    cli = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "goglobal"),
        "dlq",
        "list",
        "--status",
        "all",
        "--topic",
        topic,
        "--api-url",
        world.services["intake"].url,
        "--api-key",
        world.operator,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(cli.communicate(), timeout=60)
    assert cli.returncode == 0 and letter["id"] in out.decode()


async def test_a_replayed_event_that_was_handled_already_changes_nothing(world: World) -> None:
    await world.add_partner("replay-firm", ["marketing"], ["IT"])
    rid = await world.refer("marketing", ["IT"])
    await world.until(rid, "offered")
    submitted = await first_record(world, rid)
    # As if a consumer had dead-lettered it: its bytes, with the dead-letter headers, on the DLQ topic.
    producer = make_producer(world.namespace.infra.kafka, "test")
    await producer.start()
    try:
        headers = [
            *submitted.headers,
            ("dlq_original_topic", submitted.topic.encode()),
            ("dlq_original_partition", str(submitted.partition).encode()),
            ("dlq_original_offset", str(submitted.offset).encode()),
            ("dlq_error_class", b"TimeoutError"),
            ("dlq_error_message", b"simulated"),
            ("dlq_attempts", b"8"),
        ]
        await producer.send_and_wait(f"{submitted.topic}.dlq", submitted.value, submitted.key, headers=headers)
    finally:
        await producer.stop()
    letter_id = f"{submitted.topic}:{submitted.partition}:{submitted.offset}"
    ops = bearer(world.operator)

    async def collected() -> bool:
        return (await world.http.get(f"/v1/dead-letters/{letter_id}", headers=ops)).status_code == 200

    await eventually(collected, "the simulated dead letter")

    async def submissions_handled() -> float:
        return await metric(
            world,
            "matching",
            "goglobal_events_consumed_total",
            type="hk.goglobal.referral.submitted.v1",
            outcome="handled",
        )

    before = await submissions_handled()
    assert (await world.http.post(f"/v1/dead-letters/{letter_id}/replay", headers=ops)).json()["replayed"] == 1

    async def replay_consumed() -> bool:
        # A plan is created once per referral: matching handles the replay, and it finds the plan there.
        return await submissions_handled() > before

    await eventually(replay_consumed, "matching to consume the replay")
    history = (await world.http.get(f"/v1/referrals/{rid}/history", headers=ops)).json()
    assert [h["action"] for h in history].count("offered") == 1


async def first_record(world: World, referral_id: str) -> Any:
    consumer = AIOKafkaConsumer(
        world.namespace.topic("goglobal.referrals"),
        bootstrap_servers=world.namespace.infra.kafka,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Any] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            found.extend(
                r
                for r in records
                if r.key == referral_id.encode()
                and from_kafka(r.key, r.value, list(r.headers)).type.endswith("submitted.v1")
            )
        return bool(found)

    try:
        await eventually(collect, "the submitted record")
    finally:
        await consumer.stop()
    return found[0]


async def test_readiness_follows_the_broker(world: World) -> None:
    """Matching can do nothing without Kafka: it goes unready. Intake keeps taking requests into its outbox: it
    stays ready and reports the broker as advisory."""
    if not world.namespace.infra.native:
        pytest.skip("stops the broker: only with the native stack of deploy/local/infra.py")
    intake, matching = world.services["intake"].url, world.services["matching"].url
    native_infra("down", "kafka")
    try:

        async def matching_not_ready() -> dict[str, Any] | None:
            answer = await world.http.get(f"{matching}/readyz")
            return answer.json() if answer.status_code == 503 else None

        report = await eventually(matching_not_ready, "matching to report not ready")
        assert report["checks"]["kafka"] != "ok" and report["checks"]["database"] == "ok"

        async def intake_reports_the_broker() -> dict[str, Any] | None:
            answer = await world.http.get(f"{intake}/readyz")
            assert answer.status_code == 200, answer.text
            checks: dict[str, Any] = answer.json()["checks"]
            return checks if checks["kafka"] != "ok" else None

        checks = await eventually(intake_reports_the_broker, "intake to report the broker, ready")
        assert checks["database"] == "ok"
    finally:
        native_infra("up", "kafka")

    async def ready_again() -> bool:
        return all([(await world.http.get(f"{url}/readyz")).status_code == 200 for url in (intake, matching)])

    await eventually(ready_again, "intake and matching to be ready again", deadline_s=60)
