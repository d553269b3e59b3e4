"""Kafka helpers: an idempotent producer, topic creation, and publishing envelopes."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import OutOfOrderSequenceNumber, ProducerFenced, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from goglobal_contract.envelope import Envelope, to_kafka
from goglobal_shared.metrics import EVENTS_PRODUCED

log = logging.getLogger(__name__)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class KafkaSecurity:
    """How every client of a service authenticates to the brokers (validated in `ServiceSettings`)."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None  # None with SSL: the system's trusted CAs
    ssl_certfile: str | None = None  # a client certificate, for brokers that require mutual TLS
    ssl_keyfile: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


PLAINTEXT = KafkaSecurity()


def make_producer(bootstrap_servers: str, client_id: str, security: KafkaSecurity = PLAINTEXT) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps retries from reordering or duplicating within a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30000,
        **security.client_kwargs(),
    )


# The sender of an idempotent aiokafka producer stops for good on these (it cannot bump its epoch; after a broker
# restart OutOfOrderSequenceNumber is what arrives, aio-libs/aiokafka#1017): only a new producer sends again.
FATAL_TO_PRODUCER: tuple[type[Exception], ...] = (OutOfOrderSequenceNumber, ProducerFenced)


class RenewingProducer:
    """The service's producer, renewed (a new producer id) when the one in use hits an error fatal to it. What was
    in flight fails, and its sender sends it again (relays and consumers retry): at least once, never lost.
    Offers what the services use of AIOKafkaProducer: start, stop, send, send_and_wait, partitions_for, client."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer]) -> None:
        self._factory = factory
        self._current = factory()
        self._renewing = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._current.start()

    async def stop(self) -> None:
        await self._current.stop()

    async def partitions_for(self, topic: str) -> Any:
        return await self._current.partitions_for(topic)

    @property
    def client(self) -> Any:
        """The producer's connection to the cluster (readiness asks it whether a broker answers)."""
        return self._current.client

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None, **kwargs: Any) -> Any:
        producer = self._current
        try:
            delivery = await producer.send(topic, value=value, key=key, **kwargs)
        except FATAL_TO_PRODUCER:
            await self._renew(producer)
            raise
        delivery.add_done_callback(lambda done: self._check(producer, done))
        return delivery

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, **kwargs: Any
    ) -> Any:
        return await (await self.send(topic, value=value, key=key, **kwargs))

    def _check(self, producer: AIOKafkaProducer, done: "asyncio.Future[Any]") -> None:
        if not done.cancelled() and isinstance(done.exception(), FATAL_TO_PRODUCER):
            task = asyncio.get_running_loop().create_task(self._renew(producer))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        async with self._renewing:
            if self._current is not broken:
                return  # renewed already
            fresh = self._factory()
            await fresh.start()
            self._current = fresh
            log.warning("the Kafka producer hit an error fatal to it and was replaced by a new one")
        with contextlib.suppress(Exception):
            await broken.stop()


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
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Creates the missing topics; `configs` gives a topic its settings (e.g. compaction)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="goglobal-admin", **security.client_kwargs()
    )
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
