"""A document-embedded outbox: the write path stores events inside the aggregate's own document.

No multi-document transactions exist on FerretDB, so the state change and its pending events are written
in ONE update (single-document atomicity). Pending events sit in `outbox` keyed by event id (FerretDB 1.x
cannot `$pull` from arrays by condition), with `outbox_count` counting them. FerretDB 1.x answers only `_id`
lookups from an index (every other query scans the whole collection), so the relay finds work through a small
companion collection `<name>_pending` of document ids, marked before any event is written (under the document's
lock for updates) and cleared, under that lock, once the document has no pending event left.
A relay publishes them in order and removes each one after the broker acknowledged it. Several relays
(one per replica) share the work: each claims a document with a lock (an insert into a unique key, atomic on
MongoDB and FerretDB alike), so in normal operation no event is published twice; consumers still dedupe on
the event id. Removing an entry is a write to the aggregate's document, so it takes that document's lock.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.envelope import Envelope
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document

log = logging.getLogger(__name__)

STALE_MARKER = timedelta(minutes=2)  # a mark whose document was never written (the writer died in between)
Publish = Callable[[Envelope], Awaitable[Awaitable[None]]]  # enqueue; the result resolves on the broker's ack


def outbox_fields(envelopes: list[Envelope], start_seq: int = 0) -> dict[str, Any]:
    """`$set` entries that queue `envelopes` on a document (pair with `$inc: {outbox_count: n}`)."""
    return {f"outbox.{env.id}": {**env.to_document(), "seq": start_seq + i} for i, env in enumerate(envelopes)}


def new_document_outbox(envelopes: list[Envelope]) -> Document:
    """Outbox fields for a document being inserted."""
    return {
        "outbox": {env.id: {**env.to_document(), "seq": i} for i, env in enumerate(envelopes)},
        "outbox_count": len(envelopes),
    }


async def ensure_outbox_index(collection: AsyncCollection[Document]) -> None:
    await collection.create_index("outbox_count")


def pending_index(collection: AsyncCollection[Document]) -> AsyncCollection[Document]:
    return collection.database[f"{collection.name}_pending"]


async def mark_pending(collection: AsyncCollection[Document], doc_id: str) -> None:
    """Call before writing events to `doc_id`: the relay will look at that document."""
    with contextlib.suppress(DuplicateKeyError):
        await pending_index(collection).insert_one({"_id": doc_id, "since": datetime.now(UTC)})


@dataclass
class RelayStatus:
    running: bool = False
    last_pass_monotonic: float = 0.0
    published: int = 0
    failures_in_a_row: int = 0


@dataclass
class OutboxRelay:
    collection: AsyncCollection[Document]
    publish: Publish
    locks: DocumentLocks
    interval_s: float = 0.2
    batch: int = 100
    max_backoff_s: float = 10.0
    status: RelayStatus = field(default_factory=RelayStatus)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Called after a write so the new event goes out without waiting for the next pass."""
        self._wake.set()

    async def run(self) -> None:
        self.status.running = True
        try:
            while not self._stopping.is_set():
                await self._pass()
                self.status.last_pass_monotonic = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._pause())
                self._wake.clear()
        finally:
            self.status.running = False

    async def _pass(self) -> None:
        try:
            await self.relay_once()
            self.status.failures_in_a_row = 0
        except Exception as exc:
            self.status.failures_in_a_row += 1
            log.warning("outbox relay pass failed (%s in a row): %s", self.status.failures_in_a_row, exc)

    def _pause(self) -> float:
        """The normal interval, or a jittered exponential back-off while publishing fails (broker down)."""
        if self.status.failures_in_a_row == 0:
            return self.interval_s
        ceiling = min(self.max_backoff_s, self.interval_s * 2**self.status.failures_in_a_row)
        return random.uniform(ceiling / 2, ceiling)

    async def relay_once(self) -> int:
        """Publishes every pending event once; returns how many went out."""
        sent = 0
        async for marker in pending_index(self.collection).find({}).limit(self.batch):
            claim = f"relay:{document_key(self.collection, marker['_id'])}"
            if self._stopping.is_set() or not await self.locks.try_hold(claim):
                continue  # another relay has it
            try:
                sent += await self._relay_document(marker)
            finally:
                await self.locks.release(claim)
        self.status.published += sent
        return sent

    async def _relay_document(self, marker: Document) -> int:
        doc = await self.collection.find_one({"_id": marker["_id"]}, projection={"outbox": 1})
        if doc is None:
            if marker["since"].replace(tzinfo=UTC) < datetime.now(UTC) - STALE_MARKER:
                await pending_index(self.collection).delete_one({"_id": marker["_id"]})  # its write never came
            return 0
        return await self._publish_document(doc)

    async def _publish_document(self, doc: Document) -> int:
        """Enqueues the document's events in order, waits for every acknowledgement, then removes them in
        one write: if any send fails, nothing is removed and the next pass sends them all again."""
        entries = sorted(doc.get("outbox", {}).values(), key=lambda e: e["seq"])
        acknowledgements = [await self.publish(Envelope.from_document(entry)) for entry in entries]
        await asyncio.gather(*acknowledgements)
        async with self.locks.hold(document_key(self.collection, doc["_id"])):
            current = await self.collection.find_one({"_id": doc["_id"]}, projection={"outbox": 1}) or {}
            published = [e["id"] for e in entries if e["id"] in current.get("outbox", {})]
            if published:
                await self.collection.update_one(
                    {"_id": doc["_id"]},
                    {
                        "$unset": {f"outbox.{event_id}": "" for event_id in published},
                        "$inc": {"outbox_count": -len(published)},
                    },
                )
            if len(published) == len(current.get("outbox", {})):  # nothing new arrived meanwhile
                await pending_index(self.collection).delete_one({"_id": doc["_id"]})
        return len(entries)

    async def backlog(self) -> int:
        return await pending_index(self.collection).count_documents({})
