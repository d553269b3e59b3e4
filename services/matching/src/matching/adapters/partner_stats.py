"""Each partner's history (offers, answers, completions, ratings, open referrals), which the quality, load
and speed factors use. Updated from lifecycle events, once per event id, under the partner's lock."""

from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from matching.engine import PartnerStats

APPLIED_KEPT = 200  # event ids remembered per partner, to make a redelivery a no-op
_FIELDS = {f.name for f in fields(PartnerStats)}

StatsChange = Callable[[PartnerStats], PartnerStats]


class PartnerStatsRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks

    async def get_many(self, partner_ids: list[str]) -> dict[str, PartnerStats]:
        if not partner_ids:
            return {}
        docs = self.collection.find({"_id": {"$in": partner_ids}})
        return {doc["_id"]: _stats(doc) async for doc in docs}

    async def apply(self, partner_id: str, event_id: str, change: StatsChange, now: datetime) -> bool:
        """Applies `change` once per `event_id`; False when this event was applied before."""
        async with self.locks.hold(document_key(self.collection, partner_id)):
            doc = await self.collection.find_one({"_id": partner_id}) or {"_id": partner_id, "applied": []}
            if event_id in doc["applied"]:
                return False
            updated = change(_stats(doc))
            applied = [*doc["applied"], event_id][-APPLIED_KEPT:]
            await self.collection.replace_one(
                {"_id": partner_id},
                {"_id": partner_id, **asdict(updated), "applied": applied, "updated_at": now},
                upsert=True,
            )
            return True


def _stats(doc: dict[str, Any]) -> PartnerStats:
    return PartnerStats(**{k: v for k, v in doc.items() if k in _FIELDS})
