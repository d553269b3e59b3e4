"""Notifications' copies of the partner and enterprise directories: where and how to reach each one.
Kept current from `partner.upserted` and `enterprise.upserted`; the highest version wins."""

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_contract.events import EnterpriseUpserted, PartnerUpserted
from goglobal_shared.mongo import Document


async def _apply_versioned(collection: AsyncCollection[Document], doc_id: str, doc: Document, version: int) -> bool:
    """Stores `doc` unless an equal or newer version is held (events may arrive twice)."""
    try:
        result = await collection.replace_one(
            {"_id": doc_id, "version": {"$lt": version}}, {**doc, "_id": doc_id, "version": version}, upsert=True
        )
    except DuplicateKeyError:
        return False  # the filter missed because ours is as new or newer
    return result.modified_count == 1 or result.upserted_id is not None


class Directory:
    def __init__(
        self,
        partners: AsyncCollection[Document],
        enterprises: AsyncCollection[Document],
        endpoints: AsyncCollection[Document],
    ) -> None:
        self.partner_docs = partners
        self.enterprises = enterprises
        self.endpoints = endpoints

    async def apply_partner(self, event: PartnerUpserted) -> None:
        before = await self.partner_docs.find_one({"_id": event.partner_id})
        applied = await _apply_versioned(
            self.partner_docs, event.partner_id, event.model_dump(mode="python"), event.version
        )
        if applied and (before is None or before.get("webhook_url") != event.webhook_url):
            # A new URL is a new endpoint: whatever disabled the old one does not carry over.
            await self.endpoints.delete_one({"_id": event.partner_id})

    async def apply_enterprise(self, event: EnterpriseUpserted) -> None:
        await _apply_versioned(self.enterprises, event.enterprise_id, event.model_dump(mode="python"), event.version)

    async def partner(self, partner_id: str) -> dict[str, Any] | None:
        return await self.partner_docs.find_one({"_id": partner_id})

    async def partners(self, partner_ids: list[str]) -> dict[str, Document]:
        if not partner_ids:
            return {}
        return {d["_id"]: d async for d in self.partner_docs.find({"_id": {"$in": partner_ids}})}

    async def enterprise(self, enterprise_id: str) -> dict[str, Any] | None:
        return await self.enterprises.find_one({"_id": enterprise_id})

    async def endpoint(self, partner_id: str) -> dict[str, Any] | None:
        return await self.endpoints.find_one({"_id": partner_id})
