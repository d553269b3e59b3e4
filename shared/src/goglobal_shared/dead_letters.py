"""Dead-letter records: the original bytes, plus headers saying where they came from and why they failed."""

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from goglobal_shared.settings import dead_letter_topic


@dataclass(frozen=True)
class FailedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def dead_letter_headers(record: FailedRecord, error: BaseException, attempts: int) -> list[tuple[str, bytes]]:
    reason = f"{error}"[:2000]
    return [
        *[(k, v) for k, v in record.headers if not k.startswith("dlq_")],
        ("dlq_original_topic", record.topic.encode()),
        ("dlq_original_partition", str(record.partition).encode()),
        ("dlq_original_offset", str(record.offset).encode()),
        ("dlq_error_class", type(error).__name__.encode()),
        ("dlq_error_message", reason.encode()),
        ("dlq_attempts", str(attempts).encode()),
    ]


async def send_to_dead_letters(
    producer: AIOKafkaProducer, record: FailedRecord, error: BaseException, attempts: int
) -> None:
    await producer.send_and_wait(
        dead_letter_topic(record.topic),
        value=record.value,
        key=record.key,
        headers=dead_letter_headers(record, error, attempts),
    )
