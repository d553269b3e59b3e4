"""Enterprise profiles; the Unified Social Credit Code is unique, so one company registers once."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.enterprise import EnterpriseProfile
from goglobal_shared.ids import new_id
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document


class AlreadyRegistered(Exception):
    pass


class EnterpriseRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("profile.uscc", unique=True)

    async def register(self, profile: EnterpriseProfile, now: datetime) -> Document:
        doc = {"_id": new_id(), "profile": profile.model_dump(mode="json"), "created_at": now, "updated_at": now}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise AlreadyRegistered(profile.uscc) from exc
        return doc

    async def get(self, enterprise_id: str) -> Document | None:
        return await self.collection.find_one({"_id": enterprise_id})

    async def update(self, enterprise_id: str, changes: dict[str, Any], now: datetime) -> Document | None:
        """Applies validated changes to the profile; the caller validated the merged profile."""
        sets = {f"profile.{name}": value for name, value in changes.items()}
        async with self.locks.hold(document_key(self.collection, enterprise_id)):
            await self.collection.update_one({"_id": enterprise_id}, {"$set": {**sets, "updated_at": now}})
        return await self.get(enterprise_id)

    async def page(self, limit: int, after: str | None) -> list[Document]:
        query: Document = {"_id": {"$lt": after}} if after else {}
        return [doc async for doc in self.collection.find(query).sort("_id", -1).limit(limit)]
