"""Matching's own copy of the partner directory, kept current from `partner.upserted` events."""

from pathlib import Path

from pydantic import TypeAdapter
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.events import PartnerUpserted
from goglobal_shared.mongo import Document
from matching.engine import Partner

_PARTNER_LIST = TypeAdapter(list[Partner])


def load_partner_file(path: Path) -> list[Partner]:
    """Parses and validates a JSON list of partners; a bad file fails loudly at start-up."""
    return _PARTNER_LIST.validate_json(path.read_bytes())


def from_event(event: PartnerUpserted) -> Partner:
    return Partner(
        id=event.partner_id,
        name=event.name,
        categories=frozenset(c.category for c in event.categories),
        markets=frozenset(event.markets),
        languages=frozenset(event.languages),
        capacity=event.capacity,
        response_window_hours=event.response_window_hours,
        active=event.active,
    )


def _document(partner: Partner, version: int) -> Document:
    doc: Document = partner.model_dump(mode="json")
    doc["categories"] = sorted(doc["categories"])
    doc["markets"] = sorted(doc["markets"])
    doc["languages"] = sorted(doc["languages"])
    return {"_id": partner.id, **doc, "version": version}


class PartnerDirectory:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("categories")

    async def seed(self, partners: list[Partner]) -> None:
        for partner in partners:
            await self.collection.replace_one({"_id": partner.id}, _document(partner, 0), upsert=True)

    async def apply(self, partner: Partner, version: int) -> bool:
        """Stores the partner unless a newer version is already here (events may arrive twice)."""
        try:
            result = await self.collection.replace_one(
                {"_id": partner.id, "version": {"$lt": version}}, _document(partner, version), upsert=True
            )
        except DuplicateKeyError:
            return False  # the filter missed because our copy is as new or newer
        return result.modified_count == 1 or result.upserted_id is not None

    async def offering(self, category: ServiceCategory) -> list[Partner]:
        docs = self.collection.find({"categories": category.value, "active": True}, projection={"_id": 0, "version": 0})
        return [Partner.model_validate(doc) async for doc in docs]

    async def get(self, partner_id: str) -> Partner | None:
        doc = await self.collection.find_one({"_id": partner_id}, projection={"_id": 0, "version": 0})
        return Partner.model_validate(doc) if doc else None
