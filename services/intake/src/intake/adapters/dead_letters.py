"""Dead letters as operators see them: every record of every `<topic>.dlq`, with why it failed and every
replay (who, when, result). `_id` = original topic, partition and offset, so a record is stored once."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document
from goglobal_shared.store import ConcurrentUpdate
from goglobal_shared.store.aggregates import MAX_RETRIES
from intake.service_layer.ports import LetterFilter

OPEN, REPLAYED = "open", "replayed"


class DeadLetterRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", 1), ("dead_lettered_at", -1)])

    async def store(self, letter: Document) -> bool:
        try:
            await self.collection.insert_one({**letter, "status": OPEN, "replays": []})
        except DuplicateKeyError:
            return False
        return True

    async def page(self, where: LetterFilter, limit: int) -> list[Document]:
        docs = self.collection.find(_query(where), projection={"value": 0}).sort("dead_lettered_at", -1).limit(limit)
        return [doc async for doc in docs]

    async def get(self, letter_id: str) -> Document | None:
        return await self.collection.find_one({"_id": letter_id})

    async def matching(self, where: LetterFilter, limit: int = 10_000) -> list[Document]:
        return [doc async for doc in self.collection.find(_query(where)).limit(limit)]

    async def replayed(self, letter_id: str, by: str, at: datetime, result: str) -> None:
        replay: dict[str, Any] = {"by": by, "at": at, "result": result}
        status = REPLAYED if result == "sent" else OPEN
        for _ in range(MAX_RETRIES):  # another operator replaying it at the same moment: add to their record
            letter = await self.get(letter_id)
            if letter is None:
                return
            # The whole list is set (not `$push`ed), and the letter is not replaced: nx-27017 0.8.1 stores a date
            # inside a pushed entry as a string and cannot rewrite a document holding bytes (`value`).
            replays = [*letter.get("replays", []), replay]
            version = letter.get("version", 0)
            unchanged = {"version": version} if version else {"version": {"$exists": False}}
            written = await self.collection.update_one(
                {"_id": letter_id, **unchanged},
                {"$set": {"status": status, "replays": replays, "version": version + 1}},
            )
            if written.matched_count == 1:
                return
        raise ConcurrentUpdate(letter_id)


def _query(where: LetterFilter) -> Document:
    query: Document = {}
    if where.topic:
        query["original_topic"] = where.topic
    if where.error_class:
        query["error_class"] = where.error_class
    if where.status:
        query["status"] = where.status
    if where.since:
        query["dead_lettered_at"] = {"$gte": where.since}
    return query
