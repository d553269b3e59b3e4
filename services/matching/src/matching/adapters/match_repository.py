"""One match document per referral (`_id` = referral id), holding the outgoing event in its outbox."""

from collections.abc import Mapping
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.envelope import Envelope
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, new_document_outbox


class MatchRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)

    async def record(self, referral_id: str, decision: Mapping[str, object], outcome: Envelope, now: datetime) -> bool:
        """Stores the decision and its event atomically; False if this referral was already decided."""
        doc = {"_id": referral_id, **decision, "decided_at": now, **new_document_outbox([outcome])}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, referral_id: str) -> Document | None:
        return await self.collection.find_one({"_id": referral_id}, projection={"outbox": 0})
