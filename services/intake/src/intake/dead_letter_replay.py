"""Replaying a dead letter: its original bytes and headers go back to its original topic, marked as a replay;
consumers handle it idempotently (they dedupe on the event id). Every replay is recorded."""

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer

from goglobal_shared.mongo import Document

REPLAY_HEADER = "goglobal_replay_of"


class ReplayLog(Protocol):
    async def replayed(self, letter_id: str, by: str, at: datetime, result: str) -> None: ...


async def replay(
    letter: Document, producer: AIOKafkaProducer, letters: ReplayLog, by: str, clock: Callable[[], datetime]
) -> str:
    """Sends the letter back; returns the recorded result (`sent` or the error)."""
    result = await _send_back(letter, producer)
    await letters.replayed(letter["_id"], by, clock(), result)
    return result


async def _send_back(letter: Document, producer: AIOKafkaProducer) -> str:
    if letter.get("value_truncated"):
        # The record was too big to keep its value in the dead letter; sending the rest back would put a record
        # without its value on the original topic (on the compacted partners topic: a tombstone for the key).
        return "failed: the value was left out of the dead letter (too big); there is nothing to replay"
    headers = [(h["name"], header_value(h)) for h in letter["headers"] if h["name"] != REPLAY_HEADER]
    headers.append((REPLAY_HEADER, letter["_id"].encode()))
    try:
        await producer.send_and_wait(
            letter["original_topic"], value=letter["value"], key=letter["key"], headers=headers
        )
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"[:500]
    return "sent"


def header_value(header: Document) -> bytes | None:
    return None if header.get("null") else base64.b64decode(header["value"])  # Kafka allows a valueless header
