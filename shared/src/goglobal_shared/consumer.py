"""The consume loop every worker runs: parse, dedupe, handle, then commit; bad records go to `<topic>.dlq`.

At-least-once: an offset is committed only after the handler's effect is stored (or the record is
dead-lettered). Handlers must be idempotent on the event id; the processed-event log skips repeats cheaply.
A poll's records are handled as a batch: one read of the log for all of them, each partition's handlers in order
(the partitions side by side), one write of the log, one commit.

A poll that stored nothing (every record of a type this service ignores, or a repeat) is committed with the next
poll that did, or after `idle_commit_interval_s`: reading such records again after a restart changes nothing, and
a commit per poll of them (a service reading back the events it publishes, one poll each) costs the broker more
than the rest of the poll.

Some handlers make a repeat a no-op by themselves, in the very write of their effect: it is keyed by the event
id (an insert under a derived id), or the document it changes remembers the event ids applied to it. Their types
are named in `self_deduplicating`, and the log is neither read nor written for them: two round trips fewer per
event, and the same guarantee (a log entry would only repeat what the effect already records).
"""

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanKind

from goglobal_contract.envelope import Envelope, InvalidEvent, from_kafka
from goglobal_contract.registry import PAYLOADS
from goglobal_shared import tracing
from goglobal_shared.dead_letters import FailedRecord, send_to_dead_letters
from goglobal_shared.errors import PermanentEventError
from goglobal_shared.kafka import PLAINTEXT, KafkaSecurity
from goglobal_shared.metrics import DEAD_LETTERS, EVENT_HANDLING, EVENTS_CONSUMED
from goglobal_shared.router import Handler
from goglobal_shared.store.processed import ProcessedEvents

log = logging.getLogger(__name__)


class BatchHandler(Protocol):
    """Handles many events of `types` at once (one read, one bulk write). Returns, per event and in order, None
    when its effect is stored, a PermanentEventError to dead-letter it, or another exception when it was not
    applied (the consumer then runs it, and what follows, one by one through the ordinary handler). An event not
    applied holds back the later events of the same document."""

    @property
    def types(self) -> frozenset[str]: ...

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]: ...


@dataclass(frozen=True)
class Batches:
    """Several batch handlers as one consumer's: each gets the events of its own types, in their order, and they
    run side by side (their types are disjoint, so they change different documents)."""

    handlers: tuple[BatchHandler, ...]

    def __post_init__(self) -> None:
        claimed = [t for h in self.handlers for t in h.types]
        if len(claimed) != len(set(claimed)):
            raise ValueError("two batch handlers for one event type")

    @property
    def types(self) -> frozenset[str]:
        return frozenset(t for h in self.handlers for t in h.types)

    async def __call__(self, envelopes: list[Envelope]) -> list[Exception | None]:
        outcomes: dict[str, Exception | None] = {}

        async def run(handler: BatchHandler) -> None:
            mine = [e for e in envelopes if e.type in handler.types]
            if mine:
                outcomes.update(zip((e.id for e in mine), await handler(mine), strict=True))

        await asyncio.gather(*(run(h) for h in self.handlers))
        return [outcomes[e.id] for e in envelopes]


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


@dataclass
class Progress:
    """How far one partition of a poll got: the events handled, and the offset to commit (None: none yet)."""

    tp: TopicPartition
    first: int  # the poll's first record of the partition: where it starts again if settling fails
    handled: list[Envelope] = field(default_factory=list)
    up_to: int | None = None
    acted: bool = False  # a record was handled or dead-lettered: its commit may not wait


@dataclass
class EventConsumer:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    handlers: Mapping[str, Handler]
    processed: ProcessedEvents
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    status: ConsumerStatus = field(default_factory=ConsumerStatus)
    poll_budget_s: float = 120.0  # well inside max.poll.interval.ms (300 s): handling never starves the poll
    batch: BatchHandler | None = None
    self_deduplicating: frozenset[str] = frozenset()
    idle_commit_interval_s: float = 5.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _attempts: dict[tuple[TopicPartition, int], int] = field(default_factory=dict)
    _paused_until: dict[TopicPartition, float] = field(default_factory=dict)
    _outages: dict[TopicPartition, int] = field(default_factory=dict)
    _deferred: dict[TopicPartition, int] = field(default_factory=dict)  # offsets of polls that stored nothing
    _last_commit_monotonic: float = float("-inf")

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
            await self._commit_deferred()
        finally:
            self.status.running = False

    async def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """One read of the log and one batch-handler call for the whole poll; then the partitions side by side
        (order holds per key, i.e. per partition); then one write of the log and one commit for all of them."""
        if not batch:
            if self._deferred and self._commit_due():  # a quiet consumer's committed offsets catch up too
                await self._commit_deferred()
            return
        parsed = {tp: [_parse(record) for record in records] for tp, records in batch.items()}
        events = [e for envelopes in parsed.values() for e in envelopes]
        wanted = (e.id for e in events if isinstance(e, Envelope) and self._logged(e.type))
        try:
            seen = await self.processed.seen(wanted)
        except Exception as exc:  # the database is away: the whole poll waits, nothing was done
            for tp, records in batch.items():
                self._hold(tp, records[0].offset, exc)
            return
        done = await self._in_batch(events, seen)
        progress = await asyncio.gather(
            *(self._process_partition(tp, records, parsed[tp], seen, done) for tp, records in batch.items())
        )
        await self._settle([p for p in progress if p.up_to is not None])

    async def _process_partition(
        self,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        parsed: list[Envelope | InvalidEvent],
        seen: set[str],
        done: dict[str, Exception | None],
    ) -> "Progress":
        """Handles the partition's records in order, up to the last one handled: never past a record whose effect
        is not stored."""
        progress = Progress(tp, records[0].offset)
        for record, envelope in zip(records, parsed, strict=True):
            out_of_time = time.monotonic() - self.status.last_poll_monotonic > self.poll_budget_s
            if self._stopping.is_set() or out_of_time:  # time to poll again: the rest comes with the next poll
                self.consumer.seek(tp, record.offset)
                break
            if not self._skipped(record, envelope, seen):
                if not await self._step(record, envelope, seen, progress.handled, done):
                    self.consumer.seek(tp, record.offset)
                    self._pause(tp, record.offset)
                    break
                progress.acted = True
            progress.up_to = record.offset + 1
            self._attempts.pop((tp, record.offset), None)
        return progress

    async def _settle(self, progress: list["Progress"]) -> None:
        """Records the handled events in the log, then commits. If either fails, each partition's records come
        again from the first of the poll (their effects are stored and every handler is idempotent; the log skips
        what it holds)."""
        if not progress:
            return
        offsets = {p.tp: p.up_to for p in progress if p.up_to is not None}
        if not any(p.acted for p in progress) and not self._commit_due():
            self._deferred.update(offsets)
            return
        try:
            await self.processed.record([e for p in progress for e in p.handled if self._logged(e.type)])
            await self._commit(offsets)
        except Exception as exc:
            for p in progress:
                self._hold(p.tp, p.first, exc)
            return
        for p in progress:
            self._outages.pop(p.tp, None)

    def _commit_due(self) -> bool:
        return time.monotonic() - self._last_commit_monotonic >= self.idle_commit_interval_s

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commits `offsets` with the deferred ones of partitions this member still holds (a partition another
        member took over is its to commit)."""
        assigned = self.consumer.assignment()
        merged = {tp: at for tp, at in self._deferred.items() if tp in assigned} | offsets
        await self.consumer.commit(merged)
        self._deferred.clear()
        self._last_commit_monotonic = time.monotonic()

    async def _commit_deferred(self) -> None:
        """When polls bring nothing, and at a clean stop, so that a restart need not read the skipped records
        again (harmless if this fails: the next commit includes them)."""
        if not self._deferred:
            return
        try:
            await self._commit({})
        except Exception as exc:
            log.info("deferred commit failed (those records may be read again): %s", exc)

    def _logged(self, event_type: str) -> bool:
        """Is the processed-event log what makes a repeat of this type a no-op?"""
        return event_type in self.handlers and event_type not in self.self_deduplicating

    def _hold(self, tp: TopicPartition, offset: int, exc: Exception) -> None:
        """A failure of the database or the broker outside any handler: the partition waits, with growing pauses,
        and starts again at `offset`."""
        outages = self._outages[tp] = self._outages.get(tp, 0) + 1
        log.warning("partition %s waits (%d in a row): %s", tp, outages, exc)
        self.consumer.seek(tp, offset)
        self.consumer.pause(tp)
        self._paused_until[tp] = time.monotonic() + self.retry.delay(outages)

    async def _step(
        self,
        record: ConsumerRecord[bytes, bytes],
        parsed: Envelope | InvalidEvent,
        seen: set[str],
        handled: list[Envelope],
        done: dict[str, Exception | None],
    ) -> bool:
        """One record of the batch; False after a transient failure (the partition pauses there)."""
        if isinstance(parsed, InvalidEvent):
            await self._dead_letter(record, parsed, 1)
            return True
        settled = parsed.id in done and await self._batched(record, parsed, done.pop(parsed.id), handled)
        if not settled and not await self._attempt(record, parsed, handled):
            return False
        seen.add(parsed.id)  # the same event twice in one batch: handled once
        return True

    def _skipped(self, record: ConsumerRecord[bytes, bytes], parsed: Envelope | InvalidEvent, seen: set[str]) -> bool:
        """A record with nothing to do: a known type this service has no interest in, or a repeat."""
        if isinstance(parsed, InvalidEvent):
            return False
        if parsed.type not in self.handlers:
            EVENTS_CONSUMED.labels(record.topic, parsed.type, "ignored").inc()
            return True
        if parsed.id in seen:
            EVENTS_CONSUMED.labels(record.topic, parsed.type, "duplicate").inc()
            return True
        return False

    async def _in_batch(self, parsed: list[Envelope | InvalidEvent], seen: set[str]) -> dict[str, Exception | None]:
        """The batch handler's outcome for each of its events (none when the batch failed as a whole)."""
        if self.batch is None:
            return {}
        chosen = list({e.id: e for e in parsed if isinstance(e, Envelope) and e.type in self.batch.types}.values())
        chosen = [e for e in chosen if e.id not in seen]
        if not chosen:
            return {}
        started = time.monotonic()
        try:
            outcomes = await asyncio.wait_for(self.batch(chosen), timeout=self.retry.handler_timeout_s)
        except Exception as exc:  # the ordinary handlers take over, one event at a time
            log.warning("batch of %d events failed, handling them one by one: %s", len(chosen), exc)
            return {}
        share = (time.monotonic() - started) / len(chosen)  # each event's part of the batch's time
        for envelope in chosen:
            EVENT_HANDLING.labels(envelope.type).observe(share)
        return {e.id: outcome for e, outcome in zip(chosen, outcomes, strict=True)}

    async def _batched(
        self,
        record: ConsumerRecord[bytes, bytes],
        envelope: Envelope,
        outcome: Exception | None,
        handled: list[Envelope],
    ) -> bool:
        """Settles a record the batch handler dealt with; False when it left it to the ordinary handler."""
        if outcome is None:
            handled.append(envelope)
            self.status.handled += 1
            EVENTS_CONSUMED.labels(record.topic, envelope.type, "handled").inc()
            return True
        if isinstance(outcome, PermanentEventError):
            await self._dead_letter(record, outcome, 1)
            return True
        return False

    async def _attempt(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope, handled: list[Envelope]) -> bool:
        """True once the record is handled or dead-lettered; False after a transient failure."""
        tp = TopicPartition(record.topic, record.partition)
        attempt = self._attempts.get((tp, record.offset), 0) + 1
        self._attempts[(tp, record.offset)] = attempt
        try:
            if await self._handle(record, envelope, attempt):
                handled.append(envelope)
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

    async def _handle(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope, attempt: int) -> bool:
        """True when handled; False when refused for good (dead-lettered, not logged as handled)."""
        handler = self.handlers[envelope.type]
        with tracing.span(f"handle {envelope.type}", envelope.traceparent, SpanKind.CONSUMER):
            started = time.monotonic()
            try:
                await asyncio.wait_for(handler(envelope), timeout=self.retry.handler_timeout_s)
            except PermanentEventError as exc:
                await self._dead_letter(record, exc, attempt)
                return False
            EVENT_HANDLING.labels(envelope.type).observe(time.monotonic() - started)
        self.status.handled += 1
        EVENTS_CONSUMED.labels(record.topic, envelope.type, "handled").inc()
        return True

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception, attempt: int) -> None:
        failed = FailedRecord(
            record.topic, record.partition, record.offset, record.key, record.value, list(record.headers)
        )
        await send_to_dead_letters(self.producer, failed, exc, attempt)
        self.status.dead_lettered += 1
        EVENTS_CONSUMED.labels(record.topic, type_label(record.headers), "dead_lettered").inc()
        DEAD_LETTERS.labels(record.topic, type(exc).__name__).inc()
        log.warning("dead-lettered: %s", exc, extra={"topic": record.topic, "offset": record.offset})


def _parse(record: ConsumerRecord[bytes, bytes]) -> Envelope | InvalidEvent:
    try:
        return from_kafka(record.key, record.value, list(record.headers))
    except InvalidEvent as exc:
        return exc


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
