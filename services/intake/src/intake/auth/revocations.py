"""Every intake replica follows `goglobal.api-keys` and evicts each revoked key from its cache of verified keys.

No consumer group: each replica must see every revocation, so each is assigned all partitions. It reads from
the end of the topic as it is at start (the cache starts empty: nothing older can be stale in it), and `start`
returns only once every partition's position is fixed, before the replica serves its first request, so no
revocation published after that can be missed. Offsets are never committed.

If Kafka is away, revocations reach the other replicas late, but a cached verification never outlives the
cache's TTL (at most 5 s): that is the bound docs/operations.md states.
"""

import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from goglobal_contract.envelope import InvalidEvent, from_kafka
from goglobal_contract.events import ApiKeyRevoked
from goglobal_shared.dead_letters import FailedRecord, send_to_dead_letters
from goglobal_shared.kafka import PLAINTEXT, KafkaSecurity, ensure_topics
from goglobal_shared.periodic import ConsumerLoop, LoopOwner, each_record
from goglobal_shared.runtime import ServiceRuntime
from goglobal_shared.settings import dead_letter_topic
from intake.auth.cache import VerifiedKeyCache
from intake.settings import IntakeSettings

log = logging.getLogger(__name__)


class RevocationFollower(LoopOwner):
    """Polls on a `ConsumerLoop`: a failure ends the loop and the process (the restarted replica's cache is empty,
    so nothing it missed can be stale in it)."""

    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, cache: VerifiedKeyCache) -> None:
        self.consumer = consumer
        self.producer = producer
        self.cache = cache
        self.applied = 0
        self.loop: ConsumerLoop = ConsumerLoop("API-key revocation follower", consumer, each_record(self._apply))

    async def start(self, timeout_s: float = 30.0) -> None:
        """Starts the consumer and waits until every partition is assigned and positioned at its end."""
        await self.consumer.start()
        deadline = time.monotonic() + timeout_s
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("no partition of the API keys topic was assigned")
            await self.loop.poll(timeout_ms=100)
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)  # resolves `latest` now, not at the first fetch

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            envelope = from_kafka(record.key, record.value, list(record.headers))
        except InvalidEvent as exc:
            # Every replica sees the record; dead letters are stored by original topic, partition and offset.
            failed = FailedRecord(
                record.topic, record.partition, record.offset, record.key, record.value, list(record.headers)
            )
            await send_to_dead_letters(self.producer, failed, exc, attempts=1)
            log.warning("API key record dead-lettered: %s", exc, extra={"offset": record.offset})
            return
        if isinstance(envelope.data, ApiKeyRevoked):  # other (future) types on this topic are ignored
            self.cache.evict(envelope.data.key_id)
            self.applied += 1
            log.info("API key %s revoked: evicted from the cache", envelope.data.key_id)


def make_revocation_consumer(
    bootstrap_servers: str, topic: str, client_id: str, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        **security.client_kwargs(),
    )


async def follow_revocations(
    settings: IntakeSettings, runtime: ServiceRuntime, cache: VerifiedKeyCache
) -> RevocationFollower:
    """Creates the topic (and its dead-letter topic) if missing, positions a follower at its end and runs it in
    the runtime's loops. Call before the replica serves requests and before the API keys' relay starts."""
    topic = settings.api_keys_topic
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [topic, dead_letter_topic(topic)],
        configs=settings.topic_configs,
        security=settings.kafka_security,
    )
    consumer = make_revocation_consumer(
        settings.kafka_bootstrap_servers, topic, f"{settings.service_name}-api-keys", settings.kafka_security
    )
    follower = RevocationFollower(consumer, runtime.connections.producer, cache)
    try:
        await follower.start()
    except BaseException:
        await consumer.stop()
        raise
    runtime.loops.start(follower, follower.run(), "api-key-revocations")
    runtime.on_stop(consumer.stop)
    return follower
