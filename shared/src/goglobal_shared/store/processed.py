"""The log of handled event ids, one document each: a unique `_id` makes recording idempotent. Consumers check
and record a whole batch at once."""

from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.envelope import Envelope
from goglobal_shared.mongo import Document, insert_new


class ProcessedEvents:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def seen(self, event_ids: Iterable[str]) -> set[str]:
        """Which of `event_ids` were handled before."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return set()
        return {d["_id"] async for d in self.collection.find({"_id": {"$in": ids}}, projection={"_id": 1})}

    async def record(self, envelopes: list[Envelope]) -> None:
        # One recorded before (a redelivery) stays as it is.
        await insert_new(self.collection, [{"_id": e.id, "type": e.type, "at": e.time} for e in envelopes])
