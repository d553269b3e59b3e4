"""Replaying a dead letter: its original bytes and headers go back to its original topic, marked as a replay;
consumers handle it idempotently (they dedupe on the event id). Every replay is recorded."""

import base64
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaProducer

from goglobal_shared.mongo import Document
from intake.adapters.dead_letters import DeadLetterRepository

REPLAY_HEADER = "goglobal_replay_of"


async def replay(
    letter: Document, producer: AIOKafkaProducer, letters: DeadLetterRepository, by: str, clock: Callable[[], datetime]
) -> str:
    """Sends the letter back; returns the recorded result (`sent` or the error)."""
    headers = [(h["name"], base64.b64decode(h["value"])) for h in letter["headers"] if h["name"] != REPLAY_HEADER]
    headers.append((REPLAY_HEADER, letter["_id"].encode()))
    try:
        await producer.send_and_wait(
            letter["original_topic"], value=letter["value"], key=letter["key"], headers=headers
        )
        result = "sent"
    except Exception as exc:
        result = f"failed: {type(exc).__name__}: {exc}"[:500]
    await letters.replayed(letter["_id"], by, clock(), result)
    return result
