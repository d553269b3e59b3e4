"""Enterprise profiles; the Unified Social Credit Code is unique, so one company registers once. Every change
queues an `enterprise.upserted` event in the same write (notifications needs contact, consent, languages)."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.enterprise import EnterpriseProfile
from goglobal_shared.envelope import Envelope
from goglobal_shared.events import ContactDetails, EnterpriseUpserted
from goglobal_shared.ids import new_id
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, mark_pending, new_document_outbox, outbox_fields

SOURCE = "/goglobal/intake/enterprises"


class AlreadyRegistered(Exception):
    pass


class EnterpriseRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)
        await self.collection.create_index("profile.uscc", unique=True)

    async def register(self, profile: EnterpriseProfile, now: datetime) -> Document:
        enterprise_id = new_id()
        doc = {
            "_id": enterprise_id,
            "profile": profile.model_dump(mode="json"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            **new_document_outbox([_event(enterprise_id, profile, 1, now)]),
        }
        await mark_pending(self.collection, enterprise_id)
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise AlreadyRegistered(profile.uscc) from exc
        return doc

    async def get(self, enterprise_id: str) -> Document | None:
        return await self.collection.find_one({"_id": enterprise_id}, projection={"outbox": 0})

    async def profile(self, enterprise_id: str) -> EnterpriseProfile | None:
        return profile_of(await self.get(enterprise_id))

    async def update(self, enterprise_id: str, changes: dict[str, Any], now: datetime) -> Document | None:
        """Applies changes to the profile; raises pydantic's ValidationError if the result is not valid."""
        async with self.locks.hold(document_key(self.collection, enterprise_id)):
            current = await self.get(enterprise_id)
            if current is None:
                return None
            profile = EnterpriseProfile.model_validate(_merged(current["profile"], changes))
            version = current.get("version", 1) + 1
            event = _event(enterprise_id, profile, version, now)
            await mark_pending(self.collection, enterprise_id)
            await self.collection.update_one(
                {"_id": enterprise_id},
                {
                    "$set": {
                        "profile": profile.model_dump(mode="json"),
                        "version": version,
                        "updated_at": now,
                        **outbox_fields([event], start_seq=version * 1000),
                    },
                    "$inc": {"outbox_count": 1},
                },
            )
        return await self.get(enterprise_id)

    async def page(self, limit: int, after: str | None) -> list[Document]:
        query: Document = {"_id": {"$lt": after}} if after else {}
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", -1).limit(limit)
        return [doc async for doc in docs]


def profile_of(doc: Document | None) -> EnterpriseProfile | None:
    return EnterpriseProfile.model_validate(doc["profile"]) if doc is not None else None


def _merged(profile: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A PATCH changes the fields it names, inside nested objects too (`consent`, `contact`)."""
    merged = dict(profile)
    for name, value in changes.items():
        nested = isinstance(value, dict) and isinstance(profile.get(name), dict)
        merged[name] = _merged(profile[name], value) if nested else value
    return merged


def _event(enterprise_id: str, profile: EnterpriseProfile, version: int, now: datetime) -> Envelope:
    payload = EnterpriseUpserted(
        enterprise_id=enterprise_id,
        legal_name_zh=profile.legal_name_zh,
        legal_name_en=profile.legal_name_en,
        sector=profile.sector,
        size_band=profile.size_band.value,
        hq_province=profile.hq_province,
        hq_city=profile.hq_city,
        contact=ContactDetails(
            name=profile.contact.name, email=str(profile.contact.email), phone=profile.contact.phone
        ),
        share_contact_with_accepted_partners=profile.consent.share_contact_with_accepted_partners,
        receive_email=profile.consent.receive_email,
        preferred_languages=list(profile.preferred_languages),
        version=version,
        updated_at=now,
    )
    return Envelope.wrap(payload, source=SOURCE, subject=enterprise_id)
