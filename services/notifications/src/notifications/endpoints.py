"""Health of each partner's webhook endpoint: failing since when, and disabled or not.

An endpoint that answers 410, or keeps failing for the configured period, is disabled: its pending
webhooks wait (as `disabled`) until a redelivery is asked for, and the partner and operators are told."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.mongo import Document
from goglobal_shared.store.aggregates import replace_versioned
from notifications.adapters.deliveries import DeliveryRepository
from notifications.webhooks.policy import Verdict

OnDisabled = Callable[[str, str, str, datetime], Awaitable[None]]  # partner id, url, reason, when


class EndpointHealth:
    """One document per failing or disabled endpoint (none while it works). Disabling is a compare-and-set on the
    record's version, so of several replicas seeing the same failure exactly one disables it and tells."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        deliveries: DeliveryRepository,
        disable_after: timedelta,
        on_disabled: OnDisabled,
    ) -> None:
        self.collection = collection
        self.deliveries = deliveries
        self.disable_after = disable_after
        self.on_disabled = on_disabled

    async def state(self, partner_id: str) -> Document | None:
        """The endpoint's record: None while it works."""
        return await self.collection.find_one({"_id": partner_id})

    async def succeeded(self, partner_id: str) -> None:
        await self.collection.delete_one({"_id": partner_id, "disabled": False})

    async def failed(self, partner_id: str, url: str, verdict: Verdict, now: datetime) -> None:
        doc = await self._failing(partner_id, url, now)
        if doc.get("disabled"):
            return
        since: datetime = doc["failing_since"]
        since = since if since.tzinfo else since.replace(tzinfo=now.tzinfo)
        if verdict is Verdict.DISABLE:
            reason = "the endpoint answered 410 Gone"
        elif now - since >= self.disable_after:
            reason = f"every delivery failed since {since:%Y-%m-%d %H:%M} UTC"
        else:
            return
        if await replace_versioned(self.collection, doc, {"disabled": True, "disabled_at": now, "reason": reason}):
            await self.deliveries.hold_webhooks(partner_id, now)
            await self.on_disabled(partner_id, url, reason, now)

    async def _failing(self, partner_id: str, url: str, now: datetime) -> Document:
        """The endpoint's record, created at its first failure."""
        fresh = {"_id": partner_id, "url": url, "failing_since": now, "disabled": False, "version": 1}
        try:
            await self.collection.insert_one(fresh)
        except DuplicateKeyError:
            return await self.collection.find_one({"_id": partner_id}) or fresh
        return fresh

    async def enable_all(self) -> None:
        """An operator's redelivery of everything failed since a time: every disabled endpoint gets a new chance."""
        await self.collection.delete_many({"disabled": True})

    async def enable(self, partner_id: str) -> None:
        await self.collection.delete_one({"_id": partner_id})
