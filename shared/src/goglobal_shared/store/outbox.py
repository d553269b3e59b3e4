"""The outbox inside each aggregate's document, and the relay that publishes it.

Pending events sit in the document's `outbox`, keyed by event id, with `outbox_count` counting them; an index on
`outbox_count` is how the relay finds work. A relay pass reads a batch of documents with pending events,
publishes each document's events in order (documents side by side), waits for every acknowledgement, then clears
what it published in one bulk write. The clear of a document matches only while every event it names is still
there, so two relays (replicas) that published the same events decrement the count once; a writer's compare-and-set
names the count it read, so a writer that read the events before they were cleared reads again rather than writing
them back. The clear leaves `version` alone: clients see it (ETags, `version` in answers), and publishing is not a
change of the aggregate. A
relay that died after publishing leaves the events for the next pass: an event may be published twice, never lost,
and consumers dedupe on its id.

A write of this process hands its relay the document's pending events as written (`written`): all of them, those
of earlier writes still pending included, so publishing them in order keeps the document's order. The relay
publishes them at once, with no read, and clears them at its next pass on the clock, all documents in one bulk
write (a document written twice meanwhile is cleared once). That pass then reads the documents whose events were
written more than `grace_s` ago and are still pending: what no hand-over settled (another replica's events once
that replica had time to publish them itself, a failed publish, a clear that found the events gone). Events this
relay published already are cleared there without going out again.
"""

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.envelope import Envelope
from goglobal_shared.mongo import Document, stored_at_or_before
from goglobal_shared.periodic import LoopOwner, LoopStatus, Outcome, PeriodicTask

OUTBOX, OUTBOX_COUNT, OUTBOX_WRITTEN_AT = "outbox", "outbox_count", "outbox_written_at"
SEQ_PER_VERSION = 1000  # the events of one write are numbered after every event of the writes before it
Publish = Callable[[Envelope], Awaitable[Awaitable[None]]]  # enqueue; the result resolves on the broker's ack
Written = Callable[[dict[Any, Document]], None]  # document id -> its pending events (`outbox`) as just written
PUBLISHED_KEPT = 10_000  # ids of events this relay published, so that it does not publish them again


def ignore_written(outboxes: dict[Any, Document]) -> None:
    """For a collection with no relay in this process: its relay's pass on the clock finds the events."""


def outbox_entries(events: list[Envelope], version: int) -> dict[str, Document]:
    """The stored form of `events`, written by the write that makes the document `version`."""
    return {env.id: {**env.to_document(), "seq": version * SEQ_PER_VERSION + i} for i, env in enumerate(events)}


@dataclass
class RelayStatus(LoopStatus):
    published: int = 0


@dataclass
class OutboxRelay(LoopOwner):
    """Runs on a `PeriodicTask`: the scan is its step, on the clock (backing off while publishing fails), and what
    `written` hands over is its hand-over, published as soon as the task wakes."""

    collection: AsyncCollection[Document]
    publish: Publish
    interval_s: float = 1.0  # a write hands its events over at once; the pass on the clock clears and recovers
    batch: int = 100
    max_backoff_s: float = 10.0
    grace_s: float = 5.0  # a fresh event is its writer's relay's to publish: others leave it that long
    status: RelayStatus = field(default_factory=RelayStatus)
    loop: PeriodicTask = field(init=False, repr=False)
    _handed: dict[Any, Document] = field(default_factory=dict)
    _to_clear: dict[Any, list[str]] = field(default_factory=dict)  # published by hand-over, cleared at the next pass
    _published: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)

    def __post_init__(self) -> None:
        self.loop = PeriodicTask(
            f"outbox relay ({self.collection.name})",
            self._scan,
            self.interval_s,
            hand_over=self._publish_handed,
            max_backoff_s=self.max_backoff_s,
            status=self.status,
        )

    def wake(self) -> None:
        """Pass over the collection now (clearing what was published, publishing what waited past the grace)."""
        self.loop.wake()

    async def run(self) -> None:
        try:
            await self.loop.run()
        finally:  # what went out is cleared now, rather than published again by the next relay to start
            with contextlib.suppress(Exception):
                await self.clear_published()

    def written(self, outboxes: dict[Any, Document]) -> None:
        """Called after a write of this process queued events, with each written document's pending events, so
        they go out at once, with no read. Of two hand-overs of one document the later write's holds both."""
        for doc_id, outbox in outboxes.items():
            held = self._handed.get(doc_id)
            if held is None or _last_seq(outbox) >= _last_seq(held):
                self._handed[doc_id] = outbox
        self.loop.nudge()

    async def _publish_handed(self) -> Outcome:
        handed, self._handed = self._handed, {}
        if not handed:
            return Outcome.IDLE
        await self.relay_once(handed)  # if it fails, the events stay in their documents for the scan
        return Outcome.DONE

    async def _scan(self) -> Outcome:
        await self.clear_published()
        sent = await self.relay_once(None)
        return Outcome.MORE if sent >= self.batch else Outcome.DONE  # a full batch: more are waiting

    async def relay_once(self, handed: dict[Any, Document] | None = None) -> int:
        """Publishes one batch of pending events, those `handed` over (cleared at the next pass) or else those a
        read finds past the grace (cleared at once); returns how many went out."""
        docs = await self._stale() if handed is None else [{"_id": k, OUTBOX: v} for k, v in handed.items()]
        batches = [_in_order(doc) for doc in docs]
        new = [[e for e in entries if e["id"] not in self._published] for entries in batches]
        acknowledgements = [await self.publish(Envelope.from_document(e)) for entries in new for e in entries]
        await asyncio.gather(*acknowledgements)
        self._remember_published([e["id"] for entries in new for e in entries])
        if handed is None:
            clears = [
                _clear(doc["_id"], [e["id"] for e in entries])
                for doc, entries in zip(docs, batches, strict=True)
                if entries
            ]
            if clears:
                await self.collection.bulk_write(clears, ordered=False)
        else:
            for doc, entries in zip(docs, new, strict=True):
                self._to_clear.setdefault(doc["_id"], []).extend(e["id"] for e in entries)
        self.status.published += len(acknowledgements)
        return len(acknowledgements)

    async def clear_published(self) -> None:
        """Clears what hand-overs published since the last pass, every document in one bulk write. A clear that
        misses (some of its events were cleared already, by a scan or another replica) leaves the rest for a scan,
        which clears them without publishing them again."""
        to_clear, self._to_clear = self._to_clear, {}
        clears = [_clear(doc_id, ids) for doc_id, ids in to_clear.items() if ids]
        if not clears:
            return
        try:
            await self.collection.bulk_write(clears, ordered=False)
        except Exception:
            for doc_id, ids in to_clear.items():  # again at the next pass
                self._to_clear.setdefault(doc_id, [])[:0] = ids
            raise

    async def _stale(self) -> list[Document]:
        """Documents with events still pending that were written more than the grace ago (or before writes said
        when). The query names only the indexed count, oldest write first, and the grace is applied here: the
        oldest come first, so what passes is the whole stale part of the batch. (The age in the query itself,
        `$or` with `$exists`, made nx-27017 scan the collection every pass: 19 ms at 4,000 documents, holding every
        other command behind it.)"""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.grace_s)
        pending = self.collection.find({OUTBOX_COUNT: {"$gt": 0}}, projection={OUTBOX: 1, OUTBOX_WRITTEN_AT: 1})
        docs = [d async for d in pending.sort(OUTBOX_WRITTEN_AT, 1).limit(self.batch)]
        return [d for d in docs if OUTBOX_WRITTEN_AT not in d or stored_at_or_before(d[OUTBOX_WRITTEN_AT], cutoff)]

    def _remember_published(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self._published[event_id] = None
        while len(self._published) > PUBLISHED_KEPT:
            self._published.popitem(last=False)

    async def backlog(self) -> tuple[int, float]:
        """Documents with unpublished events, and the age in seconds of the oldest event among a sample."""
        query = {OUTBOX_COUNT: {"$gt": 0}}
        counted = [d async for d in await self.collection.aggregate([{"$match": query}, {"$count": "n"}])]
        docs = [d async for d in self.collection.find(query, projection={OUTBOX: 1}).limit(self.batch)]
        times = [_aware(e["time"]) for d in docs for e in (d.get(OUTBOX) or {}).values()]
        oldest = (datetime.now(UTC) - min(times)).total_seconds() if times else 0.0
        return (counted[0]["n"] if counted else 0), max(0.0, oldest)


def _in_order(doc: Document) -> list[Document]:
    entries: list[Document] = sorted((doc.get(OUTBOX) or {}).values(), key=lambda e: e["seq"])
    return entries


def _last_seq(outbox: Document) -> int:
    return max((entry["seq"] for entry in outbox.values()), default=0)


def _clear(doc_id: Any, ids: list[str]) -> UpdateOne:
    still_there = {f"{OUTBOX}.{event_id}": {"$exists": True} for event_id in ids}
    # The count falls: a writer that read the document before this clear fails its compare-and-set (it names
    # the count) and reads again, instead of writing the cleared events back (they would go out a second time).
    return UpdateOne(
        {"_id": doc_id, **still_there},
        {"$unset": {f"{OUTBOX}.{event_id}": "" for event_id in ids}, "$inc": {OUTBOX_COUNT: -len(ids)}},
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
