"""The offer lifecycle on the real broker and database: sequential and parallel offers, decline and re-offer,
expiry that survives a restart, exhaustion and manual assignment, withdrawal, statistics, odd events.

One system per module, with response windows compressed (one "hour" of a window lasts one second); each
scenario uses its own category and market so scenarios never share partners."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, from_kafka, to_kafka
from goglobal_contract.events import ReferralAccepted
from goglobal_shared.kafka import make_producer
from tests import factories
from tests.integration.intake_helpers import (
    bearer,
    module_namespace,
    register_enterprise,
    start_services,
    stop_services,
)
from tests.support import Infra, Namespace, ServiceProcess, discard, eventually

pytestmark = pytest.mark.integration
FAST_TIME = {"GOGLOBAL_RESPONSE_HOUR_S": "1", "GOGLOBAL_SCHEDULER_INTERVAL_S": "0.2"}


@dataclass
class World:
    namespace: Namespace
    services: dict[str, ServiceProcess]
    http: httpx.AsyncClient
    operator: str
    enterprise: str
    partner_keys: dict[str, str]
    log_dir: Path

    async def partner(self, partner_id: str, category: str, markets: list[str], window_hours: int = 60) -> None:
        body = factories.partner(partner_id, [category], markets, response_window_hours=window_hours)
        del body["id"]
        answer = await self.http.put(f"/v1/partners/{partner_id}", json=body, headers=bearer(self.operator))
        assert answer.status_code in (200, 201), answer.text
        key = await self.http.post(
            f"/v1/partners/{partner_id}/api-keys", json={"name": "t"}, headers=bearer(self.operator)
        )
        self.partner_keys[partner_id] = key.json()["api_key"]
        matching = self.services["matching"].url

        async def known() -> bool:  # the directory reaches matching through `partner.upserted`
            return (await self.http.get(f"{matching}/internal/directory/{partner_id}")).status_code == 200

        await eventually(known, f"{partner_id} in matching's directory")

    async def submit(self, need: dict[str, Any]) -> str:
        """Submits a one-need request once matching knows the need's partners; returns the referral id."""
        answer = await self.http.post("/v1/service-requests", json={"needs": [need]}, headers=bearer(self.enterprise))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["referrals"][0]["id"])

    async def referral(self, referral_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (
            await self.http.get(f"/v1/referrals/{referral_id}", headers=bearer(self.operator))
        ).json()
        return body

    async def until(self, referral_id: str, status: str, offers: list[str] | None = None) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            body = await self.referral(referral_id)
            ok = body["status"] == status and (offers is None or sorted(body["open_offers"]) == sorted(offers))
            return body if ok else None

        return await eventually(reached, f"{referral_id} to be {status} with offers {offers}")

    async def act(self, partner_id: str, referral_id: str, action: str, body: Any = None) -> httpx.Response:
        return await self.http.post(
            f"/v1/referrals/{referral_id}/{action}", json=body, headers=bearer(self.partner_keys[partner_id])
        )

    async def history(self, referral_id: str) -> list[str]:
        steps = (await self.http.get(f"/v1/referrals/{referral_id}/history", headers=bearer(self.operator))).json()
        return [f"{s['action']}:{s['why']}" for s in steps]


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    namespace = module_namespace(infra)
    log_dir = tmp_path_factory.mktemp("lifecycle")
    services = await start_services(
        ["intake", "matching", "notifications"], namespace, log_dir, {"matching": FAST_TIME}
    )
    operator = await factories.operator_key(namespace)
    async with httpx.AsyncClient(base_url=services["intake"].url, timeout=15) as http:
        enterprise = await register_enterprise(http, consent=True, contact_email="ops@brightsolar.example.cn")
        yield World(namespace, services, http, operator, enterprise.key, {}, log_dir)
    stop_services(services)
    await discard(namespace)


async def test_sequential_decline_moves_to_the_next_candidate_and_completion_counts(world: World) -> None:
    await world.partner("seq-a", "legal", ["AE"])
    await world.partner("seq-b", "legal", ["AE"])
    rid = await world.submit({"service_category": "legal", "target_markets": ["AE"]})
    first = await world.until(rid, "offered", ["seq-a"])  # equal scores: the fairness band orders by id
    assert [c["partner_id"] for c in first["candidates"]] == ["seq-a", "seq-b"]

    declined = await world.act("seq-a", rid, "decline", {"reason": "no_capacity"})
    assert declined.status_code == 200, declined.text
    await world.until(rid, "offered", ["seq-b"])
    assert (await world.act("seq-a", rid, "accept")).status_code == 409  # its offer is gone
    for action, body in [("accept", None), ("start", None), ("complete", {"outcome": "engaged", "notes": "done"})]:
        assert (await world.act("seq-b", rid, action, body)).status_code == 200

    stats = mongo_collection(world, "matching", "partner_stats")

    async def counted() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await stats.find_one({"_id": "seq-b"})
        return doc if doc and doc["completed"] == 1 else None

    b = await eventually(counted, "seq-b's completion in its statistics")
    assert (b["offers"], b["accepted"], b["completed"], b["open_referrals"]) == (1, 1, 1, 0)
    a = await stats.find_one({"_id": "seq-a"})
    assert a is not None and (a["offers"], a["declined"], a["accepted"]) == (1, 1, 0)


async def test_parallel_offers_first_acceptance_wins_and_the_rest_are_withdrawn(world: World) -> None:
    for pid in ("par-a", "par-b", "par-c"):
        await world.partner(pid, "tax", ["SG"])
    rid = await world.submit(
        {"service_category": "tax", "target_markets": ["SG"], "offer_strategy": "parallel", "parallel_offers": 2}
    )
    await world.until(rid, "offered", ["par-a", "par-b"])
    assert (await world.act("par-b", rid, "accept")).status_code == 200
    assert (await world.act("par-a", rid, "accept")).status_code == 409
    events = await referral_events(
        world, rid, lambda types: {"offer_withdrawn", "hk.goglobal.partner.offer_withdrawn"} <= set(types)
    )
    withdrawn = [e for e in events if e.type == "hk.goglobal.referral.offer_withdrawn.v1"]
    assert [e.data.model_dump()["partner_id"] for e in withdrawn] == ["par-a"]
    told = [e.data.model_dump() for e in events if e.type == "hk.goglobal.partner.offer_withdrawn.v1"]
    assert [(t["partner_id"], t["reason"]) for t in told] == [("par-a", "accepted_elsewhere")]  # intake tells it
    assert not any(e.data.model_dump().get("partner_id") == "par-c" for e in events)


async def test_an_offer_deadline_fires_after_a_restart_of_matching(world: World) -> None:
    await world.partner("exp-a", "logistics", ["BR"], window_hours=3)
    await world.partner("exp-b", "logistics", ["BR"], window_hours=60)
    rid = await world.submit({"service_category": "logistics", "target_markets": ["BR"]})
    await world.until(rid, "offered", ["exp-a"])
    matching = world.services["matching"]
    matching.kill()  # SIGKILL: the deadline must survive in the database
    restarted = ServiceProcess("matching", world.namespace, world.log_dir, FAST_TIME).start()
    world.services["matching"] = restarted
    await restarted.wait_ready()
    await world.until(rid, "offered", ["exp-b"])
    events = await referral_events(
        world, rid, lambda types: types.count("offered") >= 2 and "hk.goglobal.partner.offer_expired" in types
    )
    assert [e.data.model_dump()["partner_id"] for e in events if e.type.endswith("referral.expired.v1")] == ["exp-a"]
    told = [e.data.model_dump()["partner_id"] for e in events if e.type.endswith("partner.offer_expired.v1")]
    assert told == ["exp-a"]
    assert any("exp-a did not answer in time" in step for step in await world.history(rid))


async def test_exhaustion_leaves_it_unmatched_until_an_operator_assigns_it(world: World) -> None:
    await world.partner("ex-only", "marketing", ["IT"])
    await world.partner("ex-assigned", "accounting", ["GB"])  # not even in the category: operators may override
    rid = await world.submit({"service_category": "marketing", "target_markets": ["IT"]})
    await world.until(rid, "offered", ["ex-only"])
    assert (await world.act("ex-only", rid, "decline", {"reason": "out_of_scope"})).status_code == 200
    unmatched = await world.until(rid, "unmatched", [])
    queue = (
        await world.http.get("/v1/referrals", params={"status": "unmatched"}, headers=bearer(world.operator))
    ).json()["items"]
    assert rid in [r["id"] for r in queue] and unmatched["status"] == "unmatched"
    assigned = await world.http.post(
        f"/v1/referrals/{rid}/assign", json={"partner_id": "ex-assigned"}, headers=bearer(world.operator)
    )
    assert assigned.status_code == 200, assigned.text
    await world.until(rid, "offered", ["ex-assigned"])
    assert (await world.act("ex-assigned", rid, "accept")).status_code == 200


async def test_withdrawal_cancels_the_open_offer(world: World) -> None:
    await world.partner("wd-a", "intellectual_property", ["GB"])
    rid = await world.submit({"service_category": "intellectual_property", "target_markets": ["GB"]})
    await world.until(rid, "offered", ["wd-a"])
    withdrawn = await world.http.post(f"/v1/referrals/{rid}/withdraw", headers=bearer(world.enterprise))
    assert withdrawn.status_code == 200, withdrawn.text
    events = await referral_events(
        world, rid, lambda types: {"offer_withdrawn", "hk.goglobal.partner.offer_withdrawn"} <= set(types)
    )
    assert events[-1].data.model_dump()["reason"] == "withdrawn_by_enterprise"
    assert (await world.act("wd-a", rid, "accept")).status_code == 409


async def test_duplicate_and_unknown_events_change_nothing_and_unknown_ones_are_dead_lettered(world: World) -> None:
    await world.partner("dup-a", "regulatory_compliance", ["SA"])
    rid = await world.submit({"service_category": "regulatory_compliance", "target_markets": ["SA"]})
    await world.until(rid, "offered", ["dup-a"])
    assert (await world.act("dup-a", rid, "accept")).status_code == 200
    events = await referral_events(world, rid, lambda types: "accepted" in types)
    accepted = next(e for e in events if "accepted" in e.type)
    stray = Envelope.wrap(
        ReferralAccepted(referral_id="f" * 32, partner_id="dup-a", accepted_at=accepted.time),
        source="/test",
        subject="f" * 32,
    )
    producer = make_producer(world.namespace.infra.kafka, "test")
    await producer.start()
    try:
        for envelope in (accepted, accepted, stray):  # the same accepted event twice, then one for no referral
            record = to_kafka(envelope)
            await producer.send_and_wait(
                world.namespace.topic("goglobal.referrals"), record.value, record.key, headers=record.headers
            )
    finally:
        await producer.stop()
    letters = await dead_letter_subjects(world, "f" * 32)
    assert letters == ["f" * 32]
    stats = await mongo_collection(world, "matching", "partner_stats").find_one({"_id": "dup-a"})
    assert stats is not None and (stats["accepted"], stats["open_referrals"]) == (1, 1)


def mongo_collection(world: World, service: str, name: str) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(world.namespace.infra.mongodb_uri)
    return client[world.namespace.database(service)][name]


async def referral_events(world: World, rid: str, enough: Any) -> list[Envelope]:
    consumer = AIOKafkaConsumer(
        world.namespace.topic("goglobal.referrals"),
        bootstrap_servers=world.namespace.infra.kafka,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Envelope] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            found.extend(from_kafka(r.key, r.value, list(r.headers)) for r in records if r.key == rid.encode())
        return bool(enough([e.type.removeprefix("hk.goglobal.referral.").removesuffix(".v1") for e in found]))

    try:
        await eventually(collect, f"the events of {rid}")
    finally:
        await consumer.stop()
    return found


async def dead_letter_subjects(world: World, key: str) -> list[str]:
    consumer = AIOKafkaConsumer(
        world.namespace.topic("goglobal.referrals.dlq"),
        bootstrap_servers=world.namespace.infra.kafka,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[str] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            found.extend(r.key.decode() for r in records if r.key == key.encode())
        return bool(found)

    try:
        await eventually(collect, "the dead letter")
    finally:
        await consumer.stop()
    return found
