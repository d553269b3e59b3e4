"""The offer lifecycle on the real broker and database: sequential and parallel offers, decline and re-offer,
expiry that survives a restart, exhaustion and manual assignment, withdrawal, statistics, odd events.

One system per module, with response windows compressed (one "hour" of a window lasts one second); each
scenario uses its own category and market so scenarios never share partners."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, from_kafka, to_kafka
from goglobal_contract.events import ReferralAccepted
from goglobal_shared.kafka import make_producer
from tests.support import Infra, eventually
from tests.world import World, bearer, new_namespace, running_world

FAST_TIME = {"GOGLOBAL_RESPONSE_HOUR_S": "1", "GOGLOBAL_SCHEDULER_INTERVAL_S": "0.2"}


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("lifecycle"), {"matching": FAST_TIME}) as w:
        yield w


async def partner(world: World, partner_id: str, category: str, markets: list[str], window_hours: int = 60) -> None:
    await world.add_partner(partner_id, [category], markets, response_window_hours=window_hours)


async def history(world: World, referral_id: str) -> list[str]:
    steps = (await world.http.get(f"/v1/referrals/{referral_id}/history", headers=bearer(world.operator))).json()
    return [f"{s['action']}:{s['why']}" for s in steps]


async def test_sequential_decline_moves_to_the_next_candidate_and_completion_counts(world: World) -> None:
    await partner(world, "seq-a", "legal", ["AE"])
    await partner(world, "seq-b", "legal", ["AE"])
    rid = await world.refer("legal", ["AE"])
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
        await partner(world, pid, "tax", ["SG"])
    rid = await world.refer("tax", ["SG"], offer_strategy="parallel", parallel_offers=2)
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
    await partner(world, "exp-a", "logistics", ["BR"], window_hours=3)
    await partner(world, "exp-b", "logistics", ["BR"], window_hours=60)
    rid = await world.refer("logistics", ["BR"])
    await world.until(rid, "offered", ["exp-a"])
    await world.restart("matching")  # SIGKILL: the deadline must survive in the database
    await world.until(rid, "offered", ["exp-b"])
    events = await referral_events(
        world, rid, lambda types: types.count("offered") >= 2 and "hk.goglobal.partner.offer_expired" in types
    )
    assert [e.data.model_dump()["partner_id"] for e in events if e.type.endswith("referral.expired.v1")] == ["exp-a"]
    told = [e.data.model_dump()["partner_id"] for e in events if e.type.endswith("partner.offer_expired.v1")]
    assert told == ["exp-a"]
    assert any("exp-a did not answer in time" in step for step in await history(world, rid))


async def test_exhaustion_leaves_it_unmatched_until_an_operator_assigns_it(world: World) -> None:
    await partner(world, "ex-only", "marketing", ["IT"])
    await partner(world, "ex-assigned", "accounting", ["GB"])  # not even in the category: operators may override
    rid = await world.refer("marketing", ["IT"])
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
    await partner(world, "wd-a", "intellectual_property", ["GB"])
    rid = await world.refer("intellectual_property", ["GB"])
    await world.until(rid, "offered", ["wd-a"])
    withdrawn = await world.http.post(f"/v1/referrals/{rid}/withdraw", headers=world.enterprise.auth)
    assert withdrawn.status_code == 200, withdrawn.text
    events = await referral_events(
        world, rid, lambda types: {"offer_withdrawn", "hk.goglobal.partner.offer_withdrawn"} <= set(types)
    )
    assert events[-1].data.model_dump()["reason"] == "withdrawn_by_enterprise"
    assert (await world.act("wd-a", rid, "accept")).status_code == 409


async def test_duplicate_and_unknown_events_change_nothing_and_unknown_ones_are_dead_lettered(world: World) -> None:
    await partner(world, "dup-a", "regulatory_compliance", ["SA"])
    rid = await world.refer("regulatory_compliance", ["SA"])
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
