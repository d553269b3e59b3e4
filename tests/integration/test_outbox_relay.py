"""The document outbox on the real database and broker: in-order publication, then removal, also with two relays
racing over the same documents."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, from_kafka
from goglobal_shared.kafka import enqueue, ensure_topics, make_producer
from goglobal_shared.store import Aggregates, OutboxRelay
from goglobal_shared.store.aggregates import Change
from tests.support import Namespace, eventually
from tests.unit.test_envelope import submitted


async def test_pending_events_are_published_in_order_and_removed(namespace: Namespace) -> None:
    topic = namespace.topic("goglobal.referrals")
    await ensure_topics(namespace.infra.kafka, [topic])
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    collection = mongo[namespace.database("outbox")]["referrals"]
    docs = Aggregates(collection)
    await docs.ensure_indexes()
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()
    referral = uuid.uuid4().hex
    first, second, third = (submitted(referral) for _ in range(3))
    assert await docs.insert({"_id": referral}, [first, second])
    current = await collection.find_one({"_id": referral})
    assert current is not None
    assert await docs.save(current, Change({"note": "changed"}, [third]))
    assert not await docs.save(current, Change({"note": "stale"}))  # the version moved: a lost race
    assert await docs.insert({"_id": "quiet"}, [])

    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    relay = OutboxRelay(collection, send, grace_s=0)  # as another replica would, once the writer had its time
    try:
        before_the_clear = await collection.find_one({"_id": referral})
        assert before_the_clear is not None
        assert (await relay.backlog())[0] == 1
        assert await relay.relay_once() == 3
        assert await relay.relay_once() == 0
        assert (await relay.backlog())[0] == 0
        doc = await collection.find_one({"_id": referral})
        # Publishing is no change of the aggregate: the version clients see stays where the writes left it.
        assert doc is not None and doc["outbox"] == {} and doc["outbox_count"] == 0 and doc["version"] == 2
        # A change read before the clear would write the published events back: it loses and reads again.
        assert not await docs.save(before_the_clear, Change({"note": "late"}))
    finally:
        await producer.stop()
        await mongo.close()
    assert await published(namespace, topic, 3) == [first.id, second.id, third.id]


async def test_two_relays_racing_clear_each_event_once(namespace: Namespace) -> None:
    """Replicas relay the same collection: events may go out twice, but the count never drops below what is
    left, and nothing stays behind."""
    topic = namespace.topic("goglobal.referrals")
    await ensure_topics(namespace.infra.kafka, [topic])
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    collection = mongo[namespace.database("outbox")]["race"]
    docs = Aggregates(collection)
    await docs.ensure_indexes()
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()
    ids = [uuid.uuid4().hex for _ in range(20)]
    for referral in ids:
        assert await docs.insert({"_id": referral}, [submitted(referral), submitted(referral)])

    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    relays = [OutboxRelay(collection, send, batch=7, grace_s=0), OutboxRelay(collection, send, batch=7, grace_s=0)]
    try:
        for _ in range(10):
            await asyncio.gather(*(relay.relay_once() for relay in relays))
        counts = [d["outbox_count"] async for d in collection.find({}, projection={"outbox_count": 1})]
        assert counts == [0] * len(ids)
        assert sum(relay.status.published for relay in relays) >= 2 * len(ids)
    finally:
        await producer.stop()
        await mongo.close()
    assert len(set(await published(namespace, topic, 2 * len(ids)))) == 2 * len(ids)  # every event, by id


async def test_a_write_hands_its_events_to_the_relay_which_publishes_them_in_order_without_a_read(
    namespace: Namespace,
) -> None:
    """The relay's scan is an hour away: only the hand-over can publish. Two writes of one document between two
    passes hand over both writes' events; a hand-over of events published already publishes nothing again; the
    next pass clears them, without publishing them again."""
    topic = namespace.topic("goglobal.referrals")
    await ensure_topics(namespace.infra.kafka, [topic])
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    collection = mongo[namespace.database("outbox")]["handed"]
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()

    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    relay = OutboxRelay(collection, send, interval_s=3600)
    docs = Aggregates(collection, relay.written)
    await docs.ensure_indexes()
    runner = asyncio.create_task(relay.run())
    referral = uuid.uuid4().hex
    first, second, third = (submitted(referral) for _ in range(3))
    stale = {referral: {e.id: {**e.to_document(), "seq": 1000} for e in [first]}}
    try:

        async def scanned() -> bool:
            return relay.status.last_success_monotonic > 0

        await eventually(scanned, "the scan a starting relay makes (the next is an hour away)")
        assert await docs.insert({"_id": referral, "n": 0}, [first])
        await docs.change(referral, _bump([second]))
        await docs.change(referral, _bump([third]))

        async def all_published() -> bool:
            return relay.status.published == 3

        await eventually(all_published, "the handed-over events published")
        pending = await collection.find_one({"_id": referral})
        assert pending is not None and pending["outbox_count"] == 3  # cleared at the next pass, all at once
        assert await relay.relay_once(stale) == 0  # published by this relay already: not again
        relay.wake()

        async def cleared() -> bool:
            doc = await collection.find_one({"_id": referral})
            return doc is not None and doc["outbox_count"] == 0 and doc["outbox"] == {}

        await eventually(cleared, "the next pass clearing them")
        assert relay.status.published == 3
    finally:
        relay.stop()
        await runner
        await producer.stop()
        await mongo.close()
    assert await published(namespace, topic, 3) == [first.id, second.id, third.id]


async def test_another_replicas_fresh_events_are_left_to_it_for_the_grace(namespace: Namespace) -> None:
    """A scan takes up events another process wrote (and handed to its own relay) only once they are older than
    the grace: until then they are that relay's, and taking them too would publish them twice."""
    topic = namespace.topic("goglobal.referrals")
    await ensure_topics(namespace.infra.kafka, [topic])
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    collection = mongo[namespace.database("outbox")]["grace"]
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()

    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    elsewhere = Aggregates(collection)  # a writer whose relay is not this one
    relay = OutboxRelay(collection, send, grace_s=1.0)
    referral = uuid.uuid4().hex
    try:
        assert await elsewhere.insert({"_id": referral}, [submitted(referral)])
        assert await relay.relay_once() == 0  # fresh: its writer's relay publishes it

        async def taken_up() -> bool:
            return await relay.relay_once() == 1

        await eventually(taken_up, "the scan to take up the event past the grace")
        doc = await collection.find_one({"_id": referral})
        assert doc is not None and doc["outbox_count"] == 0
    finally:
        await producer.stop()
        await mongo.close()


def _bump(events: list[Envelope]) -> Callable[[dict[str, Any]], Awaitable[Change]]:
    async def decide(doc: dict[str, Any]) -> Change:
        return Change({"n": doc["n"] + 1}, events)

    return decide


async def published(namespace: Namespace, topic: str, count: int) -> list[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=namespace.infra.kafka, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[str] = []

    async def enough() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            seen.extend(from_kafka(r.key, r.value, list(r.headers)).id for r in records)
        return len(seen) >= count

    try:
        await eventually(enough, f"{count} published events")
    finally:
        await consumer.stop()
    return seen
