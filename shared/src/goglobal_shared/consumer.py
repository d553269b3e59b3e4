"""The consume loop every worker runs: parse, dedupe, handle, then commit; bad records go to `<topic>.dlq`.

At-least-once: an offset is committed only after the handler's effect is stored (or the record is
dead-lettered). Handlers must be idempotent on the event id; the processed-event log skips repeats cheaply.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.dead_letters import FailedRecord, send_to_dead_letters
from goglobal_shared.envelope import Envelope, InvalidEvent, from_kafka
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.mongo import Document

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]


@dataclass
class RetryPolicy:
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0

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


@dataclass
class EventConsumer:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    handlers: Mapping[str, Handler]
    processed: ProcessedEvents
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    status: ConsumerStatus = field(default_factory=ConsumerStatus)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self.status.running = True
        try:
            while not self._stopping.is_set():
                batch = await self.consumer.getmany(timeout_ms=500, max_records=100)
                self.status.last_poll_monotonic = time.monotonic()
                for tp, records in batch.items():
                    await self._process_partition(tp, records)
        finally:
            self.status.running = False

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if self._stopping.is_set():
                # Not handled yet: rewind so the next owner of the partition gets it.
                self.consumer.seek(tp, record.offset)
                return
            if not await self._process_with_retry(record):
                self.consumer.seek(tp, record.offset)
                return
            await self.consumer.commit({tp: record.offset + 1})

    async def _process_with_retry(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """True once the record is handled or dead-lettered; False if shutdown came first."""
        attempt = 0
        while not self._stopping.is_set():
            attempt += 1
            try:
                await self._process(record, attempt)
                return True
            except Exception:
                delay = self.retry.delay(attempt)
                log.exception(
                    "transient failure, retrying in %.1fs (attempt %d)",
                    delay,
                    attempt,
                    extra={"topic": record.topic, "offset": record.offset},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        return False

    async def _process(self, record: ConsumerRecord[bytes, bytes], attempt: int) -> None:
        try:
            envelope = from_kafka(record.key, record.value, list(record.headers))
            handler = self.handlers.get(envelope.type)
            if handler is None:
                return  # a known event type that this service has no interest in
            if await self.processed.seen(envelope.id):
                return
            await handler(envelope)
            await self.processed.record(envelope)
            self.status.handled += 1
        except (InvalidEvent, PermanentEventError) as exc:
            await self._dead_letter(record, exc, attempt)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception, attempt: int) -> None:
        failed = FailedRecord(
            record.topic, record.partition, record.offset, record.key, record.value, list(record.headers)
        )
        await send_to_dead_letters(self.producer, failed, exc, attempt)
        self.status.dead_lettered += 1
        log.warning("dead-lettered: %s", exc, extra={"topic": record.topic, "offset": record.offset})


def make_consumer(bootstrap_servers: str, group_id: str, topics: list[str], client_id: str) -> AIOKafkaConsumer:
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
    )
