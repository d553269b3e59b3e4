"""Enterprise profiles; the Unified Social Credit Code is unique, so one company registers once. Every change
queues an `enterprise.upserted` event in the same write (notifications needs contact, consent, languages).

`recent` serves a submission the enterprise as read at most `GOGLOBAL_ENTERPRISE_CACHE_TTL_S` (5 s) ago: the
profile a submission carries to matching may lag a change made on another replica by that much. What a partner
is told (offers, acceptances) is always read afresh (`profile`, `profiles`, `get`)."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import ContactDetails, EnterpriseUpserted
from goglobal_contract.ids import new_id
from goglobal_shared.mongo import Document
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import Change
from goglobal_shared.store.outbox import Written, ignore_written
from intake.domain.inputs.enterprise import EnterpriseProfile, patched, profile_of
from intake.recent_reads import RecentReads
from intake.service_layer.ports import AlreadyStored

SOURCE = "/goglobal/intake/enterprises"


class EnterpriseRepository:
    def __init__(
        self,
        collection: AsyncCollection[Document],
        on_events: Written = ignore_written,
        recent: RecentReads[Document] | None = None,
    ) -> None:
        self.docs = Aggregates(collection, on_events)
        self.collection = collection
        self._recent: RecentReads[Document] = recent if recent is not None else RecentReads(ttl_s=0)

    async def ensure_indexes(self) -> None:
        await self.docs.ensure_indexes()
        await self.collection.create_index("profile.uscc", unique=True)

    async def register(self, profile: EnterpriseProfile, now: datetime) -> Document:
        enterprise_id = new_id()
        doc = {
            "_id": enterprise_id,
            "profile": profile.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
        }
        if not await self.docs.insert(doc, [_event(enterprise_id, profile, 1, now)]):
            raise AlreadyStored(profile.uscc)
        return {**doc, "version": 1}

    async def get(self, enterprise_id: str) -> Document | None:
        return await self.docs.get(enterprise_id)

    async def recent(self, enterprise_id: str) -> Document | None:
        """The enterprise as read at most the cache's TTL ago (on this replica, as of its own last change)."""
        cached = self._recent.get(enterprise_id)
        if cached is not None:
            return cached
        lookup = self._recent.lookup()
        doc = await self.get(enterprise_id)
        if doc is not None:
            self._recent.put(enterprise_id, doc, lookup)
        return doc

    async def profile(self, enterprise_id: str) -> EnterpriseProfile | None:
        return profile_of(await self.get(enterprise_id))

    async def profiles(self, enterprise_ids: list[str]) -> dict[str, EnterpriseProfile | None]:
        """Several profiles in one read; raises pydantic's ValidationError for a stored profile gone invalid."""
        found = await self.docs.get_many(enterprise_ids)
        return {enterprise_id: profile_of(found.get(enterprise_id)) for enterprise_id in enterprise_ids}

    async def update(self, enterprise_id: str, changes: dict[str, Any], now: datetime) -> Document | None:
        """Applies changes to the profile; raises pydantic's ValidationError if the result is not valid."""

        async def decide(current: Document) -> Change:
            profile = EnterpriseProfile.model_validate(patched(current["profile"], changes))
            event = _event(enterprise_id, profile, current["version"] + 1, now)
            return Change({"profile": profile.model_dump(mode="json"), "updated_at": now}, [event])

        self._recent.evict(enterprise_id)  # a read in flight now cannot put the old profile back
        try:
            return await self.docs.change(enterprise_id, decide)
        finally:
            self._recent.evict(enterprise_id)

    async def page(self, limit: int, after: str | None) -> list[Document]:
        query: Document = {"_id": {"$lt": after}} if after else {}
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", -1).limit(limit)
        return [doc async for doc in docs]


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
