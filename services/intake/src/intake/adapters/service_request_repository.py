"""Service requests, each one document holding its referrals, their history and the pending events.

Saves are optimistic: the write matches the version that was read, so two concurrent commands on one
request cannot both apply; the loser reloads and re-runs (see `mutate`)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from goglobal_shared.domain.service_request import Need
from goglobal_shared.enums import ReferralStatus
from goglobal_shared.locks import DocumentLocks, document_key
from goglobal_shared.mongo import Document
from goglobal_shared.outbox import ensure_outbox_index, mark_pending, new_document_outbox, outbox_fields
from intake.domain.service_requests import Referral, ServiceRequest

MAX_CONFLICT_RETRIES = 20


class NotFound(LookupError):
    pass


class ConcurrentUpdate(RuntimeError):
    pass


class ServiceRequestRepository:
    def __init__(self, collection: AsyncCollection[Document], locks: DocumentLocks) -> None:
        self.collection = collection
        self.locks = locks
        # FerretDB answers only `_id` lookups from an index: these map other keys to request ids.
        self.referral_index = collection.database[f"{collection.name}_by_referral"]
        self.key_index = collection.database[f"{collection.name}_by_idempotency_key"]

    async def ensure_indexes(self) -> None:
        await ensure_outbox_index(self.collection)
        await self.collection.create_index("referrals.id")
        await self.collection.create_index([("enterprise_id", 1), ("_id", -1)])
        await self.collection.create_index([("enterprise_id", 1), ("idempotency_key", 1)])
        await self.collection.create_index("referrals.offered_to")
        await self.collection.create_index("referrals.status")

    async def add(self, request: ServiceRequest, now: datetime) -> bool:
        """False when a request with this id exists already (a retried submission).

        The lookups (referral -> request, idempotency key -> request) are written first: one left behind by a
        crash points at nothing and is harmless, while the request itself is never unreachable."""
        # Independent of each other, so they go to the server together: the request waits for one round trip.
        writes = [self._index(self.referral_index, referral.id, request.id) for referral in request.referrals]
        if request.idempotency_key:
            writes.append(
                self._index(self.key_index, _key_id(request.enterprise_id, request.idempotency_key), request.id)
            )
        await asyncio.gather(*writes, mark_pending(self.collection, request.id))
        doc = {**_to_document(request, now), "version": 1, **new_document_outbox(request.pending)}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        request.version, request.pending = 1, []
        return True

    @staticmethod
    async def _index(index: AsyncCollection[Document], key: str, request_id: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await index.insert_one({"_id": key, "request_id": request_id})

    async def get(self, request_id: str) -> ServiceRequest:
        doc = await self.collection.find_one({"_id": request_id}, projection={"outbox": 0})
        if doc is None:
            raise NotFound(request_id)
        return _from_document(doc)

    async def by_referral(self, referral_id: str) -> ServiceRequest:
        return await self.get(await self._request_id(referral_id))

    async def _request_id(self, referral_id: str) -> str:
        entry = await self.referral_index.find_one({"_id": referral_id})
        if entry is None:
            raise NotFound(referral_id)
        request_id: str = entry["request_id"]
        return request_id

    async def by_idempotency_key(self, enterprise_id: str, key: str) -> ServiceRequest | None:
        entry = await self.key_index.find_one({"_id": _key_id(enterprise_id, key)})
        if entry is None:
            return None
        try:
            return await self.get(entry["request_id"])
        except NotFound:
            return None  # the submission died between its lookup and its document

    async def save(self, request: ServiceRequest, now: datetime) -> None:
        update: dict[str, Any] = {"$set": {**_to_document(request, now), "version": request.version + 1}}
        del update["$set"]["_id"]
        if request.pending:
            # The relay publishes a document's events in `seq` order: later saves get higher numbers.
            update["$set"].update(outbox_fields(request.pending, start_seq=(request.version + 1) * 1000))
            update["$inc"] = {"outbox_count": len(request.pending)}
            await mark_pending(self.collection, request.id)
        # The document lock serialises writers (a `version` filter would make FerretDB scan the collection).
        result = await self.collection.update_one({"_id": request.id}, update)
        if result.matched_count == 0:
            raise ConcurrentUpdate(request.id)
        request.version, request.pending = request.version + 1, []

    async def mutate(
        self,
        referral_id: str,
        command: Callable[[ServiceRequest], Awaitable[bool]],
        clock: Callable[[], datetime],
    ) -> ServiceRequest:
        """Loads the request holding `referral_id`, runs `command` (True when it changed something) and
        saves, all under the request's document lock; re-runs on a concurrent update (MongoDB replicas)."""
        request_id = await self._request_id(referral_id)
        for _ in range(MAX_CONFLICT_RETRIES):
            async with self.locks.hold(document_key(self.collection, request_id)):
                request = await self.get(request_id)
                if not await command(request):
                    return request
                try:
                    await self.save(request, clock())
                    return request
                except ConcurrentUpdate:
                    continue
        raise ConcurrentUpdate(referral_id)

    async def page(
        self, query: Document, limit: int, after: str | None, include_after: bool = False
    ) -> list[ServiceRequest]:
        """Newest first, starting below `after` (or at it, with `include_after`)."""
        if after is not None:
            query = {**query, "_id": {"$lte" if include_after else "$lt": after}}
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", -1).limit(limit)
        return [_from_document(doc) async for doc in docs]


def _key_id(enterprise_id: str, key: str) -> str:
    return f"{enterprise_id}:{key}"


def _to_document(request: ServiceRequest, now: datetime) -> Document:
    return {
        "_id": request.id,
        "enterprise_id": request.enterprise_id,
        "enterprise_name": request.enterprise_name,
        "created_at": request.created_at,
        "updated_at": now,
        "status": request.status,
        "idempotency_key": request.idempotency_key,
        "referrals": [_referral_doc(r) for r in request.referrals],
    }


def _referral_doc(referral: Referral) -> Document:
    doc = asdict(referral)
    doc["need"] = referral.need.model_dump(mode="json")
    doc["status"] = referral.status.value
    return doc


def _from_document(doc: Document) -> ServiceRequest:
    referrals = [
        Referral(**{**r, "need": Need.model_validate(r["need"]), "status": ReferralStatus(r["status"])})
        for r in doc["referrals"]
    ]
    return ServiceRequest(
        id=doc["_id"],
        enterprise_id=doc["enterprise_id"],
        enterprise_name=doc["enterprise_name"],
        created_at=doc["created_at"],
        referrals=referrals,
        version=doc["version"],
        idempotency_key=doc.get("idempotency_key"),
    )
