"""Dead-letter records: the original bytes, plus headers saying where they came from and why they failed.

A dead letter must always get through, or the consumer cannot move past the record. The copy is bigger than the
original (the dlq_* headers), so a record the broker took at the size limit may not fit: then the value, and if
that is not enough the key and the original headers, are left out, and headers say so. The reason is always kept.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from goglobal_shared.settings import dead_letter_topic

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes | None]]  # Kafka allows a header without a value


@dataclass(frozen=True)
class FailedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _reason(record: FailedRecord, error: BaseException, attempts: int) -> list[tuple[str, bytes | None]]:
    reason = f"{error}"[:2000]
    return [
        ("dlq_original_topic", record.topic.encode()),
        ("dlq_original_partition", str(record.partition).encode()),
        ("dlq_original_offset", str(record.offset).encode()),
        ("dlq_error_class", type(error).__name__.encode()),
        ("dlq_error_message", reason.encode()),
        ("dlq_attempts", str(attempts).encode()),
    ]


def dead_letters(record: FailedRecord, error: BaseException, attempts: int) -> list[DeadLetter]:
    """The dead letter, then smaller stand-ins to send in turn while the broker or producer finds it too big."""
    reason = _reason(record, error, attempts)
    # A record dead-lettered twice (e.g. after a replay) gets fresh dlq_* headers, not two sets.
    own = [(k, v) for k, v in record.headers if not k.startswith("dlq_")]
    truncated: list[tuple[str, bytes | None]] = [
        ("dlq_value_truncated", b"true"),
        ("dlq_original_value_bytes", str(len(record.value or b"")).encode()),
    ]
    dropped: list[tuple[str, bytes | None]] = [("dlq_key_and_headers_dropped", b"true")]
    return [
        DeadLetter(record.key, record.value, [*own, *reason]),
        DeadLetter(record.key, None, [*own, *reason, *truncated]),
        DeadLetter(None, None, [*reason, *truncated, *dropped]),  # the dlq_* headers alone are small
    ]


async def send_to_dead_letters(
    producer: AIOKafkaProducer, record: FailedRecord, error: BaseException, attempts: int
) -> None:
    *copies, last = dead_letters(record, error, attempts)
    for copy in copies:
        try:
            await _send(producer, record.topic, copy)
            return
        except MessageSizeTooLargeError as exc:
            log.warning("dead letter too big, sending a smaller copy: %s", exc, extra={"topic": record.topic})
    await _send(producer, record.topic, last)


async def _send(producer: AIOKafkaProducer, topic: str, letter: DeadLetter) -> None:
    await producer.send_and_wait(dead_letter_topic(topic), value=letter.value, key=letter.key, headers=letter.headers)
