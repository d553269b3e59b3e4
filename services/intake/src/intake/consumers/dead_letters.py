"""Intake keeps every dead letter of the system for operators: a plain consumer of all `<topic>.dlq` topics
(their records need not be valid events), committing after each record is stored."""

import base64
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from goglobal_shared.mongo import Document
from goglobal_shared.periodic import ConsumerLoop, LoopOwner, Records
from intake.adapters.dead_letters import DeadLetterRepository

log = logging.getLogger(__name__)


def letter(record: ConsumerRecord[bytes, bytes]) -> Document:
    """The stored form of a dead letter. Anyone can write to a .dlq topic, so nothing in the record is trusted: a
    letter that cannot be stored would be retried forever and hold back every later letter of its partition."""
    headers = {name: raw for name, raw in record.headers}

    def text(name: str) -> str:
        raw = headers.get(name)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else ""  # a header may have no value

    # The id parts are cut to what Kafka can have (topic names are at most 249 characters): ids stay indexable.
    original_topic = text("dlq_original_topic")[:249] or record.topic.removesuffix(".dlq")
    partition = text("dlq_original_partition")[:20] or "?"
    offset = text("dlq_original_offset")[:20] or f"dlq{record.offset}"
    return {
        "_id": f"{original_topic}:{partition}:{offset}",
        "original_topic": original_topic,
        "original_partition": _number(partition),
        "original_offset": _number(offset),
        "dlq_topic": record.topic,
        "key": record.key,
        "value": record.value,
        # A list of objects, not of pairs: arrays directly inside arrays are not portable across MongoDB-wire servers.
        "headers": [_header(name, raw) for name, raw in record.headers if not name.startswith("dlq_")],
        "error_class": text("dlq_error_class"),
        "error_message": text("dlq_error_message"),
        "attempts": _number(text("dlq_attempts")) or 0,
        "value_truncated": text("dlq_value_truncated") == "true",
        "event_type": text("ce_type") or None,
        "event_id": text("ce_id") or None,
        "dead_lettered_at": datetime.fromtimestamp(record.timestamp / 1000, UTC),
    }


def _header(name: str, raw: bytes | None) -> Document:
    # Readers take `value` as base64; a header without a value (legal in Kafka) is kept as "" and flagged, so
    # that a replay sends it back as it came.
    if raw is None:
        return {"name": name, "value": "", "null": True}
    return {"name": name, "value": base64.b64encode(raw).decode()}


def _number(text: str) -> int | None:
    # ASCII digits only: str.isdigit() alone also passes "²", on which int() raises.
    return int(text) if text.isascii() and text.isdigit() else None


class DeadLetterCollector(LoopOwner):
    """Polls on a `ConsumerLoop`. A letter that cannot be stored yet (the database is away) is retried with the
    loop's back-off until it is stored or the loop stops; a failed poll or commit ends the loop and the process,
    and the group resumes from the last committed letter."""

    def __init__(self, consumer: AIOKafkaConsumer, letters: DeadLetterRepository) -> None:
        self.consumer = consumer
        self.letters = letters
        self.stored = 0
        self.loop: ConsumerLoop = ConsumerLoop("dead-letter collector", consumer, self._collect, max_records=200)

    async def _collect(self, batch: Records) -> None:
        for tp, records in batch.items():
            for record in records:
                if not await self._store(record):
                    self.consumer.seek(tp, record.offset)  # stopping: the next owner stores it
                    return
                await self.consumer.commit({tp: record.offset + 1})

    async def _store(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        while not self.loop.stopping:
            try:
                if await self.letters.store(letter(record)):
                    self.stored += 1
                    log.warning("dead letter from %s stored", record.topic)
            except Exception as exc:
                await self.loop.after_failure("storing a dead letter", exc)
                continue
            self.loop.succeeded()
            return True
        return False
