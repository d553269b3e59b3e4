"""What notifications remembers of each referral: its need, its enterprise, and who accepted it."""

import contextlib

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_contract.events import ReferralSubmitted
from goglobal_shared.mongo import Document
from notifications.fanout import Referral


class ReferralProjection:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def submitted(self, event: ReferralSubmitted) -> None:
        doc = {
            "_id": event.referral_id,
            "request_id": event.request_id,
            "enterprise_id": event.enterprise_id,
            "need": event.need.model_dump(mode="json"),
            "accepted_by": None,
        }
        with contextlib.suppress(DuplicateKeyError):  # a redelivered event: the first one stands
            await self.collection.insert_one(doc)

    async def accepted(self, referral_id: str, partner_id: str) -> None:
        await self.collection.update_one({"_id": referral_id}, {"$set": {"accepted_by": partner_id}})

    async def get(self, referral_id: str) -> Referral | None:
        doc = await self.collection.find_one({"_id": referral_id})
        if doc is None:
            return None
        return Referral(doc["_id"], doc["request_id"], doc["enterprise_id"], doc["need"], doc.get("accepted_by"))
