"""Each partner's history (offers, answers, completions, ratings, open referrals), which the quality, load
and speed factors use. Updated from lifecycle events, once per event id."""

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES
from matching.engine import PartnerStats
from matching.ports import StatsChange

APPLIED_KEPT = 200  # event ids remembered per partner, to make a redelivery a no-op
_FIELDS = {f.name for f in fields(PartnerStats)}


class PartnerStatsRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def get_many(self, partner_ids: list[str]) -> dict[str, PartnerStats]:
        if not partner_ids:
            return {}
        docs = self.collection.find({"_id": {"$in": partner_ids}})
        return {doc["_id"]: _stats(doc) async for doc in docs}

    async def apply(self, partner_id: str, event_id: str, change: StatsChange, now: datetime) -> bool:
        """Applies `change` once per `event_id`; False when this event was applied before. A compare-and-set on
        the document's version: a concurrent change of the same partner makes this one read again."""
        for _ in range(MAX_RETRIES):
            doc = await self.collection.find_one({"_id": partner_id})
            if doc is not None and event_id in doc["applied"]:
                return False
            current = doc or {"applied": [], "version": 0}
            updated = change(_stats(current))
            fields = {**asdict(updated), "applied": [*current["applied"], event_id][-APPLIED_KEPT:], "updated_at": now}
            if await self._save(partner_id, current.get("version", 0), fields):
                return True
        raise ConcurrentUpdate(partner_id)

    async def _save(self, partner_id: str, version: int, fields: Document) -> bool:
        if version == 0:
            try:
                await self.collection.insert_one({"_id": partner_id, **fields, "version": 1})
            except DuplicateKeyError:
                return False
            return True
        result = await self.collection.replace_one(
            {"_id": partner_id, "version": version}, {"_id": partner_id, **fields, "version": version + 1}
        )
        return result.matched_count == 1


def _stats(doc: dict[str, Any]) -> PartnerStats:
    return PartnerStats(**{k: v for k, v in doc.items() if k in _FIELDS})
