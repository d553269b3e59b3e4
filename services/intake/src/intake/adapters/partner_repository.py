"""The partner directory. Every change bumps the version and queues a `partner.upserted` event in the
same document write, so the other services' copies of the directory follow every change exactly."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import PartnerCategoryDetails, PartnerUpserted
from goglobal_shared.mongo import Document
from goglobal_shared.store import Aggregates, ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES, Change
from goglobal_shared.store.outbox import Written, ignore_written
from intake.domain.inputs.partner import PartnerProfile
from intake.service_layer.ports import Saved

SOURCE = "/goglobal/intake/partners"


@dataclass(frozen=True)
class SecretState:
    generation: int = 1
    previous_valid_until: datetime | None = None


class PartnerRepository:
    def __init__(self, collection: AsyncCollection[Document], on_events: Written = ignore_written) -> None:
        self.docs = Aggregates(collection, on_events)
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.docs.ensure_indexes()
        await self.collection.create_index("profile.active")

    async def get(self, partner_id: str) -> Document | None:
        return await self.docs.get(partner_id)

    async def upsert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> Saved:
        for _ in range(MAX_RETRIES):  # created by another writer meanwhile: update it instead
            if await self.get(partner_id) is None and await self._insert(partner_id, profile, actor, now):
                return Saved(await self.get(partner_id) or {}, created=True)

            async def decide(current: Document) -> Change:
                action = "deactivated" if current["profile"]["active"] and not profile.active else "updated"
                return _change(current, profile, _secret(current), actor, action, now)

            saved = await self.docs.change(partner_id, decide)
            if saved is not None:
                return Saved(saved, created=False)
        raise ConcurrentUpdate(partner_id)

    async def rotate_secret(
        self, partner_id: str, previous_valid_until: datetime, actor: str, now: datetime
    ) -> Saved | None:
        """A new signing secret; the previous one keeps signing until `previous_valid_until`."""

        async def decide(current: Document) -> Change:
            state = SecretState(_secret(current).generation + 1, previous_valid_until)
            profile = PartnerProfile.model_validate(current["profile"])
            return _change(current, profile, state, actor, "rotated the webhook secret", now)

        saved = await self.docs.change(partner_id, decide)
        return Saved(saved, created=False) if saved is not None else None

    async def _insert(self, partner_id: str, profile: PartnerProfile, actor: str, now: datetime) -> bool:
        state = SecretState()
        doc = {
            "_id": partner_id,
            "profile": profile.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
            "webhook_secret": _secret_doc(state),
            "audit": [_audit(actor, now, "created")],
        }
        return await self.docs.insert(doc, [_event(partner_id, profile, state, 1, now)])

    async def names(self, partner_ids: list[str]) -> dict[str, str]:
        """Each stored partner's name (its id when it has none), in one read of the profiles."""
        found = self.collection.find({"_id": {"$in": partner_ids}}, projection={"profile": 1})
        return {str(doc["_id"]): str((doc.get("profile") or {}).get("name") or doc["_id"]) async for doc in found}

    async def page(self, limit: int, after: str | None, active: bool | None) -> list[Document]:
        query: Document = {"_id": {"$gt": after}} if after else {}
        if active is not None:
            query["profile.active"] = active
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", 1).limit(limit)
        return [doc async for doc in docs]


def _change(
    current: Document, profile: PartnerProfile, state: SecretState, actor: str, action: str, now: datetime
) -> Change:
    fields = {
        "profile": profile.model_dump(mode="json"),
        "updated_at": now,
        "webhook_secret": _secret_doc(state),
    }
    event = _event(current["_id"], profile, state, current["version"] + 1, now)
    return Change(fields, [event], push={"audit": _audit(actor, now, action)})


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
