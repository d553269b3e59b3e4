"""Intake's read models of what the notifications service did: inbox items and deliveries (with every
attempt), projected from `goglobal.notifications` so the API can list them; and the redelivery commands
intake sends back, each stored with its event (outbox) before the API answers."""

from datetime import datetime
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from goglobal_contract.envelope import Envelope
from goglobal_contract.notification_events import (
    DeliveryOutcome,
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
)
from goglobal_shared.mongo import Document, duplicates_only, insert_new
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import replace_versioned
from goglobal_shared.store.outbox import Written, ignore_written


class NotificationViews:
    def __init__(
        self,
        inbox: AsyncCollection[Document],
        deliveries: AsyncCollection[Document],
        endpoints: AsyncCollection[Document],
        commands: AsyncCollection[Document],
        on_commands: Written = ignore_written,
    ) -> None:
        self.inbox = inbox
        self.deliveries = deliveries
        self.endpoints = endpoints
        self.commands = Aggregates(commands, on_commands)

    async def ensure_indexes(self) -> None:
        await self.inbox.create_index([("recipient_id", 1), ("created_at", -1)])
        await self.deliveries.create_index([("recipient_id", 1), ("updated_at", -1)])
        await self.commands.ensure_indexes()

    async def add_to_inbox(self, events: list[NotificationCreated]) -> None:
        """Inserts each item under its notification id, in one write: a redelivered one exists (and may have been
        read) and stays as it is."""
        await insert_new(
            self.inbox, [{"_id": e.notification_id, **e.model_dump(mode="python"), "read_at": None} for e in events]
        )

    async def keep_latest(self, states: list[Document]) -> None:
        """Keeps the latest state of each delivery, in one write: the one with the most attempts wins, whatever
        the order, so replays are harmless. A replay of older news (fewer attempts) changes nothing: the filter
        misses the newer state held, and the upsert then finds the `_id` taken."""
        writes = [
            ReplaceOne({"_id": s["_id"], "attempt_count": {"$lte": s["attempt_count"]}}, s, upsert=True) for s in states
        ]
        if not writes:
            return
        try:
            await self.deliveries.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            duplicates_only(exc)

    async def endpoint_disabled(self, event: EndpointDisabled) -> None:
        doc = {"_id": event.partner_id, **event.model_dump(mode="python")}
        await self.endpoints.replace_one({"_id": event.partner_id}, doc, upsert=True)

    async def endpoint(self, partner_id: str) -> Document | None:
        return await self.endpoints.find_one({"_id": partner_id})

    async def inbox_page(
        self, recipient_id: str, unread_only: bool, limit: int, before: datetime | None
    ) -> list[Document]:
        query: dict[str, Any] = {"recipient_id": recipient_id}
        if unread_only:
            query["read_at"] = None
        if before is not None:
            query["created_at"] = {"$lt": before}
        return [d async for d in self.inbox.find(query).sort("created_at", -1).limit(limit)]

    async def mark_read(self, recipient_id: str, notification_id: str, now: datetime) -> Document | None:
        item = await self.inbox.find_one({"_id": notification_id, "recipient_id": recipient_id})
        if item is None or item.get("read_at") is not None:
            return item
        read = {"read_at": now}
        return (
            {**item, **read}
            if await replace_versioned(self.inbox, item, read)
            else await self.inbox.find_one({"_id": notification_id})
        )

    async def delivery_page(self, query: Document, limit: int, before: datetime | None) -> list[Document]:
        if before is not None:
            query = {**query, "updated_at": {**query.get("updated_at", {}), "$lt": before}}
        return [d async for d in self.deliveries.find(query).sort("updated_at", -1).limit(limit)]

    async def delivery(self, delivery_id: str) -> Document | None:
        return await self.deliveries.find_one({"_id": delivery_id})

    async def webhook_states(self) -> list[Document]:
        """Every partner webhook delivery's partner and latest state (two small fields each), for the console."""
        query = {"channel": "webhook", "recipient_type": "partner"}
        return [d async for d in self.deliveries.find(query, projection={"recipient_id": 1, "status": 1})]

    async def command(self, command_id: str, event: Envelope, now: datetime) -> None:
        """Stores the command with its event; the relay sends it to notifications."""
        await self.commands.insert({"_id": command_id, "created_at": now}, [event])


def delivered(event: NotificationDelivered) -> Document:
    """A delivery's state after this outcome, as `keep_latest` stores it."""
    return _delivery_state(event, {"status": "delivered"})


def failed(event: NotificationFailed) -> Document:
    status = "failed" if event.final else "retrying"
    return _delivery_state(event, {"status": status, "next_attempt_at": event.next_attempt_at})


def _delivery_state(event: DeliveryOutcome, state: Document) -> Document:
    return {
        "_id": event.delivery_id,
        **event.model_dump(mode="python"),
        **state,
        "attempt_count": len(event.attempts),
        "updated_at": event.at,
    }
