"""The document outbox on the real database and broker: in-order publication, then removal."""

import uuid
from collections.abc import Awaitable

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from goglobal_shared.envelope import Envelope, from_kafka
from goglobal_shared.kafka import enqueue, ensure_topics, make_producer
from goglobal_shared.locks import DocumentLocks
from goglobal_shared.outbox import OutboxRelay, ensure_outbox_index, mark_pending, new_document_outbox, outbox_fields
from tests.support import Namespace, eventually
from tests.unit.test_envelope import submitted

pytestmark = pytest.mark.integration


async def test_pending_events_are_published_in_order_and_removed(namespace: Namespace) -> None:
    topic = namespace.topic("goglobal.referrals")
    await ensure_topics(namespace.infra.kafka, [topic])
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    collection = mongo[namespace.database("outbox")]["referrals"]
    await ensure_outbox_index(collection)
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()
    referral = uuid.uuid4().hex
    first, second, third = (submitted(referral) for _ in range(3))
    await mark_pending(collection, referral)  # the writer's contract: mark, then write the events
    await collection.insert_one({"_id": referral, **new_document_outbox([first, second])})
    await collection.update_one(
        {"_id": referral}, {"$set": outbox_fields([third], start_seq=2), "$inc": {"outbox_count": 1}}
    )
    await collection.insert_one({"_id": "quiet", **new_document_outbox([])})

    async def send(envelope: Envelope) -> Awaitable[None]:
        return await enqueue(producer, topic, envelope)

    relay = OutboxRelay(collection, send, DocumentLocks(mongo[namespace.database("outbox")]["locks"]))
    try:
        assert await relay.backlog() == 1
        assert await relay.relay_once() == 3
        assert await relay.relay_once() == 0
        assert await relay.backlog() == 0
        doc = await collection.find_one({"_id": referral})
        assert doc is not None and doc["outbox"] == {} and doc["outbox_count"] == 0
    finally:
        await producer.stop()
        await mongo.close()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=namespace.infra.kafka, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[str] = []

    async def all_three() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            seen.extend(from_kafka(r.key, r.value, list(r.headers)).id for r in records)
        return len(seen) >= 3

    try:
        await eventually(all_three, "three published events")
    finally:
        await consumer.stop()
    assert seen == [first.id, second.id, third.id]
