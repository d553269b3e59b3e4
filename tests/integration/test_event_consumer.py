"""The shared consume loop on the real broker and database: dedupe, dead letters, commits."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from goglobal_contract.envelope import Envelope, to_kafka
from goglobal_contract.events import ReferralUnmatched
from goglobal_shared.consumer import EventConsumer, RetryPolicy, make_consumer
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.kafka import ensure_topics, make_producer
from goglobal_shared.settings import dead_letter_topic
from goglobal_shared.store import ProcessedEvents
from tests.support import Namespace, eventually
from tests.unit.test_envelope import NOW, submitted


@dataclass
class Rig:
    topic: str
    group: str
    producer: AIOKafkaProducer
    handled: list[str]
    loop: EventConsumer
    task: "asyncio.Task[None]"
    namespace: Namespace


@pytest.fixture
async def rig(namespace: Namespace) -> AsyncIterator[Rig]:
    topic, group = namespace.topic("goglobal.referrals"), namespace.topic("group")
    await ensure_topics(namespace.infra.kafka, [topic, dead_letter_topic(topic)])
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()
    consumer = make_consumer(namespace.infra.kafka, group, [topic], "test")
    await consumer.start()
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    handled: list[str] = []
    attempts: dict[str, int] = {}

    async def handler(envelope: Envelope) -> None:
        data = envelope.data.model_dump()
        attempts[envelope.id] = attempts.get(envelope.id, 0) + 1
        if data["enterprise_name"] == "refuse":
            raise PermanentEventError("this referral cannot apply")
        if data["enterprise_name"] == "flaky" and attempts[envelope.id] < 3:
            raise ConnectionError("database briefly away")
        handled.append(envelope.id)

    processed = ProcessedEvents(mongo[namespace.database("consumer")]["processed_events"])
    loop = EventConsumer(consumer, producer, {envelope_type(): handler}, processed, RetryPolicy(0.05, 0.2))
    task = asyncio.create_task(loop.run())
    try:
        yield Rig(topic, group, producer, handled, loop, task, namespace)
    finally:
        loop.stop()
        await task
        await consumer.stop()
        await producer.stop()
        await mongo.close()


def envelope_type() -> str:
    return submitted().type


async def send(rig: Rig, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
    await rig.producer.send_and_wait(rig.topic, value=value, key=key, headers=headers)


async def send_envelope(rig: Rig, envelope: Envelope) -> None:
    record = to_kafka(envelope)
    await send(rig, record.key, record.value, record.headers)


async def dead_letters(rig: Rig, count: int) -> list[dict[str, bytes]]:
    consumer = AIOKafkaConsumer(
        dead_letter_topic(rig.topic), bootstrap_servers=rig.namespace.infra.kafka, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, bytes]] = []

    async def collect() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            found.extend(dict(r.headers) for r in records)
        return len(found) >= count

    try:
        await eventually(collect, f"{count} dead letters")
    finally:
        await consumer.stop()
    return found


async def test_a_redelivered_event_is_handled_once(rig: Rig) -> None:
    envelope = submitted(uuid.uuid4().hex)
    await send_envelope(rig, envelope)
    await send_envelope(rig, envelope)
    later = submitted(envelope.subject)  # same referral, new event: ordered after the duplicates
    await send_envelope(rig, later)

    async def both() -> bool:
        return later.id in rig.handled

    await eventually(both, "the later event to be handled")
    assert rig.handled == [envelope.id, later.id]


async def test_poison_and_refused_events_are_dead_lettered_and_the_partition_flows(rig: Rig) -> None:
    referral = uuid.uuid4().hex
    refused = submitted(referral)
    refused = Envelope.wrap(
        refused.data.model_copy(update={"enterprise_name": "refuse"}), source="/t", subject=referral
    )
    good = submitted(referral)
    await send(rig, referral.encode(), b"\x00garbage", [("content-type", b"application/json")])
    await send_envelope(rig, refused)
    await send(rig, referral.encode(), None, [])
    await send_envelope(rig, good)

    async def good_handled() -> bool:
        return good.id in rig.handled

    await eventually(good_handled, "the good event after the poison ones")
    letters = await dead_letters(rig, 3)
    assert [h["dlq_error_class"] for h in letters] == [b"InvalidEvent", b"PermanentEventError", b"InvalidEvent"]
    assert all(h["dlq_original_topic"] == rig.topic.encode() for h in letters)
    assert letters[1]["dlq_error_message"] == b"this referral cannot apply"
    assert {"dlq_original_partition", "dlq_original_offset", "dlq_attempts"} <= set(letters[0])
    assert refused.id not in rig.handled


async def test_transient_failures_are_retried_then_committed(rig: Rig) -> None:
    referral = uuid.uuid4().hex
    flaky = submitted(referral)
    flaky = Envelope.wrap(flaky.data.model_copy(update={"enterprise_name": "flaky"}), source="/t", subject=referral)
    await send_envelope(rig, flaky)

    async def handled() -> bool:
        return flaky.id in rig.handled

    await eventually(handled, "the flaky event after retries")
    # The offset after it is committed: a new member of the group would not see it again.
    await eventually(lambda: _committed_at_least(rig, 1), "the offset commit")


async def committed_total(rig: Rig) -> int:
    """The group's committed offsets summed over the topic's partitions, read by a member that never joins."""
    reader = AIOKafkaConsumer(bootstrap_servers=rig.namespace.infra.kafka, group_id=rig.group, enable_auto_commit=False)
    await reader.start()
    try:
        return sum([await reader.committed(TopicPartition(rig.topic, p)) or 0 for p in range(3)])
    finally:
        await reader.stop()


def unmatched(referral_id: str) -> Envelope:
    """A known type the rig's consumer has no handler for: read, counted as ignored, nothing stored."""
    payload = ReferralUnmatched(referral_id=referral_id, reason="no partner covers AE", unmatched_at=NOW)
    return Envelope.wrap(payload, source="/goglobal/matching", subject=referral_id)


async def test_skipped_records_are_committed_with_the_next_stored_effect_and_at_stop(rig: Rig) -> None:
    """A poll of records this service ignores stores nothing, so its commit waits (a commit per such poll costs the
    broker more than the poll); the next poll that stores an effect commits them too, as does a clean stop."""
    rig.loop.idle_commit_interval_s = 3600.0  # only a stored effect or the stop may commit
    referral = uuid.uuid4().hex
    await send_envelope(rig, (first := submitted(referral)))
    await eventually(lambda: _committed_at_least(rig, 1), "the handled event committed")
    for _ in range(3):
        await send_envelope(rig, unmatched(referral))
    await eventually(read_past(rig, 4), "the consumer past the ignored records")
    assert await committed_total(rig) == 1  # skipped, not committed yet
    await send_envelope(rig, (second := submitted(referral)))
    await eventually(lambda: _committed_at_least(rig, 5), "the skipped records committed with the next effect")
    assert rig.handled == [first.id, second.id]

    await send_envelope(rig, unmatched(referral))
    await eventually(read_past(rig, 6), "the consumer past one more ignored record")
    rig.loop.stop()
    await rig.task
    assert await committed_total(rig) == 6  # the stop committed what was read


async def test_a_quiet_consumer_commits_the_skipped_records_within_the_interval(rig: Rig) -> None:
    """Nothing more arrives after the skipped records: the commit still comes, from an empty poll once the interval
    has passed (tools that count lag from committed offsets would otherwise show it for good)."""
    rig.loop.idle_commit_interval_s = 1.0
    referral = uuid.uuid4().hex
    await send_envelope(rig, submitted(referral))
    await eventually(lambda: _committed_at_least(rig, 1), "the handled event committed")  # the interval restarts
    for _ in range(3):
        await send_envelope(rig, unmatched(referral))
    await eventually(lambda: _committed_at_least(rig, 4), "the skipped records committed with no further traffic")
    assert rig.loop.status.running


def read_past(rig: Rig, total: int) -> Callable[[], Awaitable[bool]]:
    """A probe: has the consumer read `total` records of the topic (all partitions together)?"""

    async def positions() -> bool:
        read: int = sum([await rig.loop.consumer.position(tp) for tp in rig.loop.consumer.assignment()])
        return read == total

    return positions


async def _committed_at_least(rig: Rig, total: int) -> bool:
    return await committed_total(rig) >= total


async def test_a_self_deduplicating_type_is_handled_without_the_log(namespace: Namespace) -> None:
    """Its handler keys the effect by the event id: a repeat is a no-op there, and the log stays out of it."""
    topic, group = namespace.topic("goglobal.referrals"), namespace.topic("group")
    await ensure_topics(namespace.infra.kafka, [topic, dead_letter_topic(topic)])
    producer = make_producer(namespace.infra.kafka, "test")
    await producer.start()
    consumer = make_consumer(namespace.infra.kafka, group, [topic], "test")
    await consumer.start()
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(namespace.infra.mongodb_uri)
    database = mongo[namespace.database("consumer")]
    effects = database["effects"]

    async def handler(envelope: Envelope) -> None:
        await effects.update_one({"_id": envelope.id}, {"$inc": {"calls": 1}}, upsert=True)

    processed = ProcessedEvents(database["processed_events"])
    loop = EventConsumer(
        consumer, producer, {envelope_type(): handler}, processed, self_deduplicating=frozenset({envelope_type()})
    )
    task = asyncio.create_task(loop.run())
    envelope = submitted(uuid.uuid4().hex)
    try:
        record = to_kafka(envelope)
        await producer.send_and_wait(topic, value=record.value, key=record.key, headers=record.headers)

        async def committed() -> bool:
            offsets = [await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(3)]
            return sum(offsets) == 1 and await effects.find_one({"_id": envelope.id}) is not None

        await eventually(committed, "the event handled and committed")
        assert await database["processed_events"].count_documents({}) == 0
    finally:
        loop.stop()
        await task
        await consumer.stop()
        await producer.stop()
        await mongo.close()
