"""The partners matching can choose from, kept in matching's own collection."""

import json
from pathlib import Path

from pydantic import TypeAdapter
from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.mongo import Document
from matching.engine import Partner

_PARTNER_LIST = TypeAdapter(list[Partner])


def load_partner_file(path: Path) -> list[Partner]:
    """Parses and validates a JSON list of partners; a bad file fails loudly at start-up."""
    return _PARTNER_LIST.validate_json(path.read_bytes())


class PartnerDirectory:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("categories")

    async def upsert(self, partners: list[Partner]) -> None:
        for partner in partners:
            doc = json.loads(partner.model_dump_json())
            doc["categories"] = sorted(doc["categories"])
            doc["markets"] = sorted(doc["markets"])
            await self.collection.replace_one({"_id": partner.id}, {"_id": partner.id, **doc}, upsert=True)

    async def offering(self, category: ServiceCategory) -> list[Partner]:
        docs = self.collection.find({"categories": category.value, "active": True}, projection={"_id": 0})
        return [Partner.model_validate(doc) async for doc in docs]
