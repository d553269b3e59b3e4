"""A collection of aggregate documents, each with a `version` and its unpublished events inside it.

A change is a compare-and-set: the whole new document replaces the one that was read, on the condition that its
`version` is still the one read, so of two concurrent changes of one document exactly one applies; the other
reads again and re-runs (`change`). The events a change queues are written by the same replacement, so they
exist exactly when the change does. The condition also names the `outbox_count` read: a relay's clear of published
events lowers it (and leaves `version`, which clients see, alone), so a change read before the clear is decided
again rather than writing those events back. Only a writer raises the count, and a writer moves the version.

Whole-document replacement, never `$set` of single values: nx-27017 0.8.1 turns a date `$set` on an existing
document into a string (tests/contract records it), and a replacement is as atomic on every server."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_contract.envelope import Envelope
from goglobal_shared.mongo import Document, insert_new
from goglobal_shared.store.outbox import (
    OUTBOX,
    OUTBOX_COUNT,
    OUTBOX_WRITTEN_AT,
    Written,
    ignore_written,
    outbox_entries,
)

MAX_RETRIES = 50


class ConcurrentUpdate(RuntimeError):
    """Other writers kept changing the document: the change could not be applied."""


@dataclass(frozen=True)
class Change:
    """What to write: fields to set, events to queue, fields to remove, entries to append to lists."""

    fields: Document
    events: list[Envelope] = field(default_factory=list)
    unset: frozenset[str] = frozenset()
    push: Document = field(default_factory=dict)


Decide = Callable[[Document], Awaitable[Change | None]]  # None: nothing to change
DecideMany = Callable[[dict[str, Document]], Awaitable[dict[str, Change]]]  # documents by id -> changes by id
WRITE_TOKEN = "write_token"


class Aggregates:
    def __init__(self, collection: AsyncCollection[Document], on_events: Written = ignore_written) -> None:
        self.collection = collection
        # Called after events were written, with the written documents' pending events: the relay publishes them
        # now, with no read, instead of at its next pass.
        self.on_events = on_events

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(OUTBOX_COUNT)

    async def get(self, doc_id: str) -> Document | None:
        return await self.collection.find_one({"_id": doc_id}, projection={OUTBOX: 0})

    async def _get_whole(self, doc_id: str) -> Document | None:
        return await self.collection.find_one({"_id": doc_id})

    async def get_many(self, doc_ids: list[str]) -> dict[str, Document]:
        if not doc_ids:
            return {}
        return {d["_id"]: d async for d in self.collection.find({"_id": {"$in": doc_ids}}, projection={OUTBOX: 0})}

    async def insert(self, doc: Document, events: list[Envelope]) -> bool:
        """False when a document with this `_id` (or another unique key of it) exists already."""
        stored = _new(doc, events)
        try:
            await self.collection.insert_one(stored)
        except DuplicateKeyError:
            return False
        self._written([stored])
        return True

    async def insert_many(self, docs: list[tuple[Document, list[Envelope]]]) -> None:
        """New documents with their events, in one write; one whose `_id` exists already is left as it is."""
        self._written(await insert_new(self.collection, [_new(doc, events) for doc, events in docs]))

    async def save(self, current: Document, change: Change) -> bool:
        """Replaces `current` (as read, outbox included) by its changed form, if it is still at its version; False
        when another writer came first."""
        changed = _changed(current, change)
        result = await self.collection.replace_one(_as_read(current), changed)
        if result.matched_count != 1:
            return False
        if change.events:
            self._written([changed])
        return True

    async def change(self, doc_id: str, decide: Decide) -> Document | None:
        """Reads the document, lets `decide` say what to change, and saves it; re-runs when another writer came
        first. Returns the document as written (None when there is none)."""
        for _ in range(MAX_RETRIES):
            doc = await self._get_whole(doc_id)
            if doc is None:
                return None
            change = await decide(_without_outbox(doc))
            if change is None:
                return doc
            if await self.save(doc, change):
                return {**doc, **change.fields, "version": doc["version"] + 1}
        raise ConcurrentUpdate(doc_id)

    async def change_many(self, doc_ids: list[str], decide: DecideMany) -> set[str]:
        """Reads the documents in one query, lets `decide` say what to change in each, and writes every change in
        one bulk write of compare-and-set replacements. Returns the ids whose change lost a race and was not
        written: the caller runs those again one by one (`change`)."""
        whole = {d["_id"]: d async for d in self.collection.find({"_id": {"$in": doc_ids}})}
        changes = await decide({doc_id: _without_outbox(doc) for doc_id, doc in whole.items()})
        if not changes:
            return set()
        token = uuid.uuid4().hex  # marks this batch's replacements, to tell which ones won
        written = {
            doc_id: {**_changed(whole[doc_id], change), WRITE_TOKEN: token} for doc_id, change in changes.items()
        }
        ops = [ReplaceOne(_as_read(whole[doc_id]), doc) for doc_id, doc in written.items()]
        result = await self.collection.bulk_write(ops, ordered=False)
        if result.matched_count == len(ops):
            lost: set[str] = set()
        else:
            query = {"_id": {"$in": list(changes)}, WRITE_TOKEN: token}
            lost = set(changes) - {d["_id"] async for d in self.collection.find(query, projection={"_id": 1})}
        self._written([doc for doc_id, doc in written.items() if doc_id not in lost and changes[doc_id].events])
        return lost

    def _written(self, docs: list[Document]) -> None:
        outboxes = {doc["_id"]: doc[OUTBOX] for doc in docs if doc.get(OUTBOX)}
        if outboxes:
            self.on_events(outboxes)


def _as_read(doc: Document) -> Document:
    """Matches the document only while no writer and no relay has changed it since it was read."""
    count = doc.get(OUTBOX_COUNT)
    read_count = count if count is not None else {"$exists": False}
    return {"_id": doc["_id"], "version": doc["version"], OUTBOX_COUNT: read_count}


def _without_outbox(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in (OUTBOX, WRITE_TOKEN)}


def _changed(current: Document, change: Change) -> Document:
    """The whole document after `change`: its fields set, fields named in `unset` removed, entries appended to
    the lists named in `push`, its events queued behind those still pending."""
    version = current["version"] + 1
    outbox = {**(current.get(OUTBOX) or {}), **outbox_entries(change.events, version=version)}
    doc = {k: v for k, v in current.items() if k not in change.unset}
    for name, entry in change.push.items():
        doc[name] = [*doc.get(name, []), entry]
    if change.events:  # when the relays of other replicas may take them up (see store.outbox)
        doc[OUTBOX_WRITTEN_AT] = datetime.now(UTC)
    return {**doc, **change.fields, "version": version, OUTBOX: outbox, OUTBOX_COUNT: len(outbox)}


def _new(doc: Document, events: list[Envelope]) -> Document:
    entries = outbox_entries(events, version=1)
    written = {OUTBOX_WRITTEN_AT: datetime.now(UTC)} if events else {}
    return {**doc, "version": 1, OUTBOX: entries, OUTBOX_COUNT: len(entries), **written}


async def replace_versioned(collection: AsyncCollection[Document], current: Document, fields: Document) -> bool:
    """For documents without events: `current` with `fields` changed replaces it if its `version` (0 or absent:
    never saved with one) is still the one read; False when another writer came first."""
    version = current.get("version", 0)
    matched_version: Document = {"version": version} if version else {"version": {"$exists": False}}
    result = await collection.replace_one(
        {"_id": current["_id"], **matched_version}, {**current, **fields, "version": version + 1}
    )
    return result.matched_count == 1
