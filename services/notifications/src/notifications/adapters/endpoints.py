"""Health of each partner's webhook endpoint: one document per failing or disabled endpoint (none while it works).
Disabling is a compare-and-set on the record's version, so of several replicas seeing the same failure exactly
one disables it (and tells: `NotificationService.disable_endpoint`)."""

from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document
from goglobal_shared.store.aggregates import replace_versioned


class EndpointRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def state(self, partner_id: str) -> Document | None:
        return await self.collection.find_one({"_id": partner_id})

    async def failing(self, partner_id: str, url: str, now: datetime) -> Document:
        fresh = {"_id": partner_id, "url": url, "failing_since": now, "disabled": False, "version": 1}
        try:
            await self.collection.insert_one(fresh)
        except DuplicateKeyError:
            return await self.collection.find_one({"_id": partner_id}) or fresh
        return fresh

    async def disable(self, record: Document, reason: str, now: datetime) -> bool:
        return await replace_versioned(
            self.collection, record, {"disabled": True, "disabled_at": now, "reason": reason}
        )

    async def succeeded(self, partner_id: str) -> None:
        await self.collection.delete_one({"_id": partner_id, "disabled": False})

    async def enable(self, partner_id: str) -> None:
        await self.collection.delete_one({"_id": partner_id})

    async def enable_all(self) -> None:
        await self.collection.delete_many({"disabled": True})
