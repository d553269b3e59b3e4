"""Kafka helpers: an idempotent producer, topic creation, and publishing envelopes."""

import contextlib
import logging
from collections.abc import Awaitable, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from goglobal_shared.envelope import Envelope, to_kafka
from goglobal_shared.metrics import EVENTS_PRODUCED

log = logging.getLogger(__name__)


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps retries from reordering or duplicating within a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30000,
    )


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    """Sends and waits for the broker's acknowledgement."""
    await (await enqueue(producer, topic, envelope))


async def enqueue(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> Awaitable[None]:
    """Hands the record to the producer (records enqueued in order keep their order per partition) and returns
    what to await for the broker's acknowledgement, so many records can be in flight at once."""
    record = to_kafka(envelope)
    delivery = await producer.send(topic, value=record.value, key=record.key, headers=record.headers)

    async def acknowledged() -> None:
        await delivery
        EVENTS_PRODUCED.labels(topic, envelope.type).inc()

    return acknowledged()


async def ensure_topics(
    bootstrap_servers: str,
    topics: list[str],
    partitions: int = 3,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Creates the missing topics; `configs` gives a topic its settings (e.g. compaction)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="goglobal-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t, num_partitions=partitions, replication_factor=1, topic_configs=dict((configs or {}).get(t, {})))
            for t in dict.fromkeys(topics)
            if t not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
