"""The partner directory. Every change bumps the version and queues a `partner.upserted` event in the
same document write, so matching's copy of the directory follows every change exactly."""

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.partner import PartnerProfile
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import PartnerCategoryDetails, PartnerUpserted
from goglobal_shared.locks import DocumentLocks
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, new_document_outbox, outbox_fields

SOURCE = "/goglobal/intake/partners"
MAX_CONFLICT_RETRIES = 20


@dataclass(frozen=True)
class Saved:
    doc: Document
    created: bool


class PartnerRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)
        await self.collection.create_index("profile.active")

    async def get(self, partner_id: str) -> Document | None:
        return await self.collection.find_one({"_id": partner_id}, projection={"outbox": 0})

    async def upsert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved:
        for _ in range(MAX_CONFLICT_RETRIES):
            current = await self.get(partner_id)
            saved = await (
                self._update(current, profile, actor, now) if current else self._insert(partner_id, profile, actor, now)
            )
            if saved is not None:
                return saved
        raise RuntimeError(f"partner {partner_id} keeps changing under us")

    async def _insert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved | None:
        event = _event(partner_id, profile, 1, now)
        doc = {
            "_id": partner_id,
            "profile": profile.model_dump(mode="json"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "audit": [_audit(actor, now, "created")],
            **new_document_outbox([event]),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return None
        return Saved(doc, created=True)

    async def _update(self, current: Document, profile: PartnerProfile, actor: str, now: datetime) -> Saved | None:
        version = current["version"] + 1
        event = _event(current["_id"], profile, version, now)
        action = "updated" if profile.active or current["profile"]["active"] == profile.active else "deactivated"
        result = await self.collection.update_one(
            {"_id": current["_id"], "version": current["version"]},
            {
                "$set": {
                    "profile": profile.model_dump(mode="json"),
                    "version": version,
                    "updated_at": now,
                    **outbox_fields([event], start_seq=version * 1000),
                },
                "$push": {"audit": _audit(actor, now, action)},
                "$inc": {"outbox_count": 1},
            },
        )
        if result.matched_count == 0:
            return None
        return Saved(await self.get(current["_id"]) or {}, created=False)

    async def page(self, limit: int, after: str | None, active: bool | None) -> list[Document]:
        query: Document = {"_id": {"$gt": after}} if after else {}
        if active is not None:
            query["profile.active"] = active
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", 1).limit(limit)
        return [doc async for doc in docs]


def _audit(actor: str, now: datetime, action: str) -> Document:
    return {"at": now, "actor": actor, "action": action}


def _event(partner_id: str, profile: PartnerProfile, version: int, now: datetime) -> Envelope:
    payload = PartnerUpserted(
        partner_id=partner_id,
        name=profile.name,
        categories=[PartnerCategoryDetails(category=c.category, specialties=c.specialties) for c in profile.categories],
        markets=list(profile.markets),
        sectors=list(profile.sectors),
        languages=list(profile.languages),
        capacity=profile.capacity,
        response_window_hours=profile.response_window_hours,
        offer_strategy=profile.offer_strategy,
        parallel_offers=profile.parallel_offers,
        active=profile.active,
        version=version,
        updated_at=now,
    )
    return Envelope.wrap(payload, source=SOURCE, subject=partner_id)
