"""The consume loop every worker runs: parse, dedupe, handle, then commit; bad records go to `<topic>.dlq`.

At-least-once: an offset is committed only after the handler's effect is stored (or the record is
dead-lettered). Handlers must be idempotent on the event id; the processed-event log skips repeats cheaply.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanKind
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared import tracing
from goglobal_shared.contract import PAYLOADS
from goglobal_shared.dead_letters import FailedRecord, send_to_dead_letters
from goglobal_shared.envelope import Envelope, InvalidEvent, from_kafka
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.kafka import PLAINTEXT, KafkaSecurity
from goglobal_shared.metrics import DEAD_LETTERS, EVENT_HANDLING, EVENTS_CONSUMED
from goglobal_shared.mongo import Document

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]


@dataclass
class RetryPolicy:
    """Transient failures (database or broker away, a handler timing out) are retried with growing delays,
    then dead-lettered: a poison record never holds its partition for long, and never the other partitions."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_attempts: int = 8
    handler_timeout_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))


@dataclass
class ConsumerStatus:
    """Read by /readyz: is the loop alive and making progress?"""

    running: bool = False
    last_poll_monotonic: float = 0.0
    handled: int = 0
    dead_lettered: int = 0


class ProcessedEvents:
    """The log of handled event ids, one document each; a unique `_id` makes recording idempotent."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def seen(self, event_id: str) -> bool:
        return await self.collection.find_one({"_id": event_id}, projection={"_id": 1}) is not None

    async def record(self, envelope: Envelope) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one({"_id": envelope.id, "type": envelope.type, "at": envelope.time})


class Step(Enum):
    DONE = "done"  # every record of the partition handled (or dead-lettered) and committed
    PAUSED = "paused"  # a transient failure: the partition waits, the others go on
    YIELD = "yield"  # time to poll again (or stopping): leave the rest of the batch for the next poll


@dataclass
class EventConsumer:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    handlers: Mapping[str, Handler]
    processed: ProcessedEvents
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    status: ConsumerStatus = field(default_factory=ConsumerStatus)
    poll_budget_s: float = 120.0  # well inside max.poll.interval.ms (300 s): handling never starves the poll
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _attempts: dict[tuple[TopicPartition, int], int] = field(default_factory=dict)
    _paused_until: dict[TopicPartition, float] = field(default_factory=dict)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self.status.running = True
        try:
            while not self._stopping.is_set():
                self._resume_due()
                batch = await self.consumer.getmany(timeout_ms=500, max_records=100)
                self.status.last_poll_monotonic = time.monotonic()
                await self._process_batch(batch)
        finally:
            self.status.running = False

    async def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """Partitions are independent (order holds per key, i.e. per partition): handle them side by side."""
        await asyncio.gather(*(self._process_partition(tp, records) for tp, records in batch.items()))

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> Step:
        """Handles the partition's records in order and commits once, up to the last one handled: never past a
        record whose effect is not stored."""
        handled_up_to: int | None = None
        try:
            for record in records:
                out_of_time = time.monotonic() - self.status.last_poll_monotonic > self.poll_budget_s
                if self._stopping.is_set() or out_of_time:
                    self.consumer.seek(tp, record.offset)
                    return Step.YIELD
                if not await self._attempt(record):
                    self.consumer.seek(tp, record.offset)
                    self._pause(tp, record.offset)
                    return Step.PAUSED
                handled_up_to = record.offset + 1
                self._attempts.pop((tp, record.offset), None)
            return Step.DONE
        finally:
            if handled_up_to is not None:
                await self.consumer.commit({tp: handled_up_to})

    async def _attempt(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """True once the record is handled or dead-lettered; False after a transient failure."""
        tp = TopicPartition(record.topic, record.partition)
        attempt = self._attempts.get((tp, record.offset), 0) + 1
        self._attempts[(tp, record.offset)] = attempt
        try:
            await self._process(record, attempt)
            return True
        except Exception as exc:
            if attempt >= self.retry.max_attempts:
                await self._dead_letter(record, exc, attempt)
                return True
            EVENTS_CONSUMED.labels(record.topic, type_label(record.headers), "retried").inc()
            log.warning(
                "transient failure (attempt %d of %d): %s",
                attempt,
                self.retry.max_attempts,
                exc,
                extra={"topic": record.topic, "offset": record.offset},
            )
            return False

    def _pause(self, tp: TopicPartition, offset: int) -> None:
        attempt = self._attempts.get((tp, offset), 1)
        self.consumer.pause(tp)
        self._paused_until[tp] = time.monotonic() + self.retry.delay(attempt)

    def _resume_due(self) -> None:
        now = time.monotonic()
        for tp in [tp for tp, until in self._paused_until.items() if until <= now]:
            del self._paused_until[tp]
            if tp in self.consumer.assignment():
                self.consumer.resume(tp)

    async def _process(self, record: ConsumerRecord[bytes, bytes], attempt: int) -> None:
        try:
            envelope = from_kafka(record.key, record.value, list(record.headers))
        except InvalidEvent as exc:
            await self._dead_letter(record, exc, attempt)
            return
        handler = self.handlers.get(envelope.type)
        if handler is None:
            EVENTS_CONSUMED.labels(record.topic, envelope.type, "ignored").inc()
            return  # a known event type that this service has no interest in
        if await self.processed.seen(envelope.id):
            EVENTS_CONSUMED.labels(record.topic, envelope.type, "duplicate").inc()
            return
        with tracing.span(f"handle {envelope.type}", envelope.traceparent, SpanKind.CONSUMER):
            started = time.monotonic()
            try:
                await asyncio.wait_for(handler(envelope), timeout=self.retry.handler_timeout_s)
            except PermanentEventError as exc:
                await self._dead_letter(record, exc, attempt)
                return
            EVENT_HANDLING.labels(envelope.type).observe(time.monotonic() - started)
        await self.processed.record(envelope)
        self.status.handled += 1
        EVENTS_CONSUMED.labels(record.topic, envelope.type, "handled").inc()

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception, attempt: int) -> None:
        failed = FailedRecord(
            record.topic, record.partition, record.offset, record.key, record.value, list(record.headers)
        )
        await send_to_dead_letters(self.producer, failed, exc, attempt)
        self.status.dead_lettered += 1
        EVENTS_CONSUMED.labels(record.topic, type_label(record.headers), "dead_lettered").inc()
        DEAD_LETTERS.labels(record.topic, type(exc).__name__).inc()
        log.warning("dead-lettered: %s", exc, extra={"topic": record.topic, "offset": record.offset})


def type_label(headers: Sequence[tuple[str, bytes | None]]) -> str:
    """The `type` label of a record's metrics: its ce_type when that is an event type of the contract, else
    "unknown". The header is whatever the producer wrote (a null value, junk bytes, a made-up type): taken as is,
    every distinct junk type would make new time series without bound."""
    raw = next((value for name, value in headers if name == "ce_type"), None)
    event_type = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
    return event_type if event_type in PAYLOADS else "unknown"


def make_consumer(
    bootstrap_servers: str, group_id: str, topics: list[str], client_id: str, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=300000,
        session_timeout_ms=10000,
        heartbeat_interval_ms=2000,
        **security.client_kwargs(),
    )
