"""Replaying dead letters: a letter's original bytes and headers go back to its original topic, marked as a replay;
consumers handle it idempotently (they dedupe on the event id). Every replay is recorded, with who asked."""

import base64
from dataclasses import dataclass

from intake.service_layer.errors import NotFound
from intake.service_layer.ports import Clock, LetterFilter, LetterStore, Producer, Record

REPLAY_HEADER = "goglobal_replay_of"
SENT = "sent"


@dataclass(frozen=True)
class DeadLetterReplays:
    letters: LetterStore
    producer: Producer
    clock: Clock

    async def one(self, letter_id: str, by: str) -> str:
        """Sends the letter back; returns the recorded result (`sent` or why it failed)."""
        letter = await self.letters.get(letter_id)
        if letter is None:
            raise NotFound("dead-letter", letter_id)
        return await self._replay(letter, by)

    async def open_ones(self, where: LetterFilter, by: str) -> dict[str, str]:
        """Every open letter that matches `where`, each letter's result by its id."""
        open_ones = LetterFilter(where.topic, where.error_class, "open", where.since)
        return {letter["_id"]: await self._replay(letter, by) for letter in await self.letters.matching(open_ones)}

    async def _replay(self, letter: Record, by: str) -> str:
        result = await self._send_back(letter)
        await self.letters.replayed(letter["_id"], by, self.clock(), result)
        return result

    async def _send_back(self, letter: Record) -> str:
        if letter.get("value_truncated"):
            # The record was too big to keep its value in the dead letter; sending the rest back would put a record
            # without its value on the original topic (on the compacted partners topic: a tombstone for the key).
            return "failed: the value was left out of the dead letter (too big); there is nothing to replay"
        headers = [(h["name"], header_value(h)) for h in letter["headers"] if h["name"] != REPLAY_HEADER]
        headers.append((REPLAY_HEADER, letter["_id"].encode()))
        try:
            await self.producer.send_and_wait(
                letter["original_topic"], value=letter["value"], key=letter["key"], headers=headers
            )
        except Exception as exc:
            return f"failed: {type(exc).__name__}: {exc}"[:500]
        return SENT


def header_value(header: Record) -> bytes | None:
    return None if header.get("null") else base64.b64decode(header["value"])  # Kafka allows a valueless header
