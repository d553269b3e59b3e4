"""The partner directory. Every change bumps the version and queues a `partner.upserted` event in the
same document write, so the other services' copies of the directory follow every change exactly."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.partner import PartnerProfile
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import PartnerCategoryDetails, PartnerUpserted
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, mark_pending, new_document_outbox, outbox_fields

SOURCE = "/goglobal/intake/partners"


@dataclass(frozen=True)
class Saved:
    doc: Document
    created: bool


@dataclass(frozen=True)
class SecretState:
    generation: int = 1
    previous_valid_until: datetime | None = None


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
        async with self.locks.hold(document_key(self.collection, partner_id)):
            current = await self.get(partner_id)
            if current is None:
                return await self._insert(partner_id, profile, actor, now)
            was_active = current["profile"]["active"]
            action = "deactivated" if was_active and not profile.active else "updated"
            return await self._update(current, profile, _secret(current), actor, action, now)

    async def rotate_secret(
        self, partner_id: str, previous_valid_until: datetime, actor: str, now: datetime
    ) -> Saved | None:
        """A new signing secret; the previous one keeps signing until `previous_valid_until`."""
        async with self.locks.hold(document_key(self.collection, partner_id)):
            current = await self.get(partner_id)
            if current is None:
                return None
            state = SecretState(_secret(current).generation + 1, previous_valid_until)
            profile = PartnerProfile.model_validate(current["profile"])
            return await self._update(current, profile, state, actor, "rotated the webhook secret", now)

    async def _insert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved:
        state = SecretState()
        doc = {
            "_id": partner_id,
            "profile": profile.model_dump(mode="json"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "webhook_secret": _secret_doc(state),
            "audit": [_audit(actor, now, "created")],
            **new_document_outbox([_event(partner_id, profile, state, 1, now)]),
        }
        await mark_pending(self.collection, partner_id)
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError as exc:  # cannot happen under the lock, unless the lock expired
            raise RuntimeError(f"partner {partner_id} was created concurrently") from exc
        return Saved(doc, created=True)

    async def _update(
        self, current: Document, profile: PartnerProfile, state: SecretState, actor: str, action: str, now: datetime
    ) -> Saved:
        version = current["version"] + 1
        event = _event(current["_id"], profile, state, version, now)
        await mark_pending(self.collection, current["_id"])
        await self.collection.update_one(
            {"_id": current["_id"]},
            {
                "$set": {
                    "profile": profile.model_dump(mode="json"),
                    "version": version,
                    "updated_at": now,
                    "webhook_secret": _secret_doc(state),
                    **outbox_fields([event], start_seq=version * 1000),
                },
                "$push": {"audit": _audit(actor, now, action)},
                "$inc": {"outbox_count": 1},
            },
        )
        return Saved(await self.get(current["_id"]) or {}, created=False)

    async def page(self, limit: int, after: str | None, active: bool | None) -> list[Document]:
        query: Document = {"_id": {"$gt": after}} if after else {}
        if active is not None:
            query["profile.active"] = active
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", 1).limit(limit)
        return [doc async for doc in docs]


def _secret(doc: Document) -> SecretState:
    raw: dict[str, Any] = doc.get("webhook_secret") or {}
    return SecretState(raw.get("generation", 1), raw.get("previous_valid_until"))


def _secret_doc(state: SecretState) -> Document:
    return {"generation": state.generation, "previous_valid_until": state.previous_valid_until}


def _audit(actor: str, now: datetime, action: str) -> Document:
    return {"at": now, "actor": actor, "action": action}


def _event(partner_id: str, profile: PartnerProfile, state: SecretState, version: int, now: datetime) -> Envelope:
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
        contact_email=str(profile.contact.email),
        delivery_email=str(profile.delivery.email) if profile.delivery.email else None,
        webhook_url=str(profile.delivery.webhook_url) if profile.delivery.webhook_url else None,
        webhook_secret_generation=state.generation,
        previous_secret_valid_until=state.previous_valid_until,
        version=version,
        updated_at=now,
    )
    return Envelope.wrap(payload, source=SOURCE, subject=partner_id)
