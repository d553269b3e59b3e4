"""Notification documents; one per (event, recipient), so a redelivered event records nothing new."""

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document


class NotificationRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("recipient_id", 1), ("created_at", -1)])
        await self.collection.create_index("referral_id")

    async def add(self, notification: Document) -> bool:
        try:
            await self.collection.insert_one(notification)
        except DuplicateKeyError:
            return False
        return True

    async def for_referral(self, referral_id: str) -> list[Document]:
        return [doc async for doc in self.collection.find({"referral_id": referral_id})]
