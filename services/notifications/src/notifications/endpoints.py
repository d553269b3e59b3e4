"""Health of each partner's webhook endpoint: failing since when, and disabled or not.

An endpoint that answers 410, or keeps failing for the configured period, is disabled: its pending
webhooks wait (as `disabled`) until a redelivery is asked for, and the partner and operators are told."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from notifications.adapters.deliveries import DeliveryRepository
from notifications.webhooks.policy import Verdict

OnDisabled = Callable[[str, str, str, datetime], Awaitable[None]]  # partner id, url, reason, when


class EndpointHealth:
    def __init__(
        self,
        collection: AsyncCollection[Document],
        deliveries: DeliveryRepository,
        locks: DocumentLocks,
        disable_after: timedelta,
        on_disabled: OnDisabled,
    ) -> None:
        self.collection = collection
        self.deliveries = deliveries
        self.locks = locks
        self.disable_after = disable_after
        self.on_disabled = on_disabled

    async def is_disabled(self, partner_id: str) -> bool:
        doc = await self.collection.find_one({"_id": partner_id})
        return bool(doc and doc.get("disabled_at"))

    async def succeeded(self, partner_id: str) -> None:
        async with self.locks.hold(document_key(self.collection, partner_id)):
            await self.collection.update_one(
                {"_id": partner_id, "disabled_at": None}, {"$set": {"failing_since": None}}
            )

    async def failed(self, partner_id: str, url: str, verdict: Verdict, now: datetime) -> None:
        async with self.locks.hold(document_key(self.collection, partner_id)):
            doc = await self.collection.find_one({"_id": partner_id}) or {}
            if doc.get("disabled_at"):
                return
            since = doc.get("failing_since") or now
            await self.collection.replace_one(
                {"_id": partner_id},
                {"_id": partner_id, "url": url, "failing_since": since, "disabled_at": None},
                upsert=True,
            )
            if verdict is Verdict.DISABLE:
                reason = "the endpoint answered 410 Gone"
            elif now - since >= self.disable_after:
                reason = f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC"
            else:
                return
            await self.collection.update_one({"_id": partner_id}, {"$set": {"disabled_at": now, "reason": reason}})
        await self.deliveries.hold_webhooks(partner_id, now)
        await self.on_disabled(partner_id, url, reason, now)

    async def enable_all(self) -> None:
        """An operator's redelivery of everything failed since a time: every disabled endpoint gets a new chance."""
        async for doc in self.collection.find({"disabled_at": {"$ne": None}}, projection={"_id": 1}):
            await self.enable(doc["_id"])

    async def enable(self, partner_id: str) -> None:
        async with self.locks.hold(document_key(self.collection, partner_id)):
            await self.collection.delete_one({"_id": partner_id})
