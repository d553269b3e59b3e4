"""Service requests, each one document holding its referrals, their history and the pending events.

A referral's id is its request's id with a different last byte (`request_id_of`), so finding the request of a
referral needs no lookup. `statuses` counts the request's referrals by status: lists filter on it (a scalar field
of a subdocument, indexable on every supported server, unlike fields inside the `referrals` array). Which
partners a request was offered to lives in a small collection with one document per (partner, request): the
partners' lists read it through an index on scalar fields."""

import contextlib
import copy
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from goglobal_contract.enums import ReferralStatus
from goglobal_shared.mongo import Document
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import Change
from goglobal_shared.store.outbox import Written, ignore_written
from intake.domain.inputs.service_request import Need
from intake.domain.service_requests import Referral, ServiceRequest, request_id_of
from intake.service_layer.ports import NotStored, RequestFilter


class ServiceRequestRepository:
    def __init__(self, collection: AsyncCollection[Document], on_events: Written = ignore_written) -> None:
        self.docs = Aggregates(collection, on_events)
        self.collection = collection
        self.offers = collection.database[f"{collection.name}_offers"]

    async def ensure_indexes(self) -> None:
        await self.docs.ensure_indexes()
        await self.collection.create_index("enterprise_id")
        await self.collection.create_index("idempotency_key_id", unique=True, sparse=True)
        await self.collection.create_index(f"statuses.{ReferralStatus.UNMATCHED.value}")
        await self.offers.create_index([("partner_id", 1), ("request_id", -1)])

    async def add(self, request: ServiceRequest, now: datetime) -> ServiceRequest:
        """Stores a new request with its events; returns the one stored: `request`, or the earlier request the
        enterprise sent with the same `Idempotency-Key` (a retried submission)."""
        if await self.docs.insert(_to_document(request, now), request.pending):
            request.version, request.pending = 1, []
            return request
        if request.idempotency_key:
            earlier = await self.by_idempotency_key(request.enterprise_id, request.idempotency_key)
            if earlier is not None:
                return earlier
        raise RuntimeError(f"service request {request.id} exists already")  # a new id never collides

    async def get(self, request_id: str) -> ServiceRequest:
        doc = await self.docs.get(request_id)
        if doc is None:
            raise NotStored(request_id)
        return _from_document(doc)

    async def by_referral(self, referral_id: str) -> ServiceRequest:
        request = await self.get(request_id_of(referral_id))
        if not any(r.id == referral_id for r in request.referrals):
            raise NotStored(referral_id)
        return request

    async def by_idempotency_key(self, enterprise_id: str, key: str) -> ServiceRequest | None:
        doc = await self.collection.find_one({"idempotency_key_id": _key_id(enterprise_id, key)}, {"outbox": 0})
        return _from_document(doc) if doc else None

    async def mutate(
        self, referral_id: str, command: Callable[[ServiceRequest], Awaitable[bool]], clock: Callable[[], datetime]
    ) -> ServiceRequest:
        """Runs `command` (True when it changed something) on the request holding `referral_id` and saves it with
        the events it queued; re-runs on a concurrent change."""
        outcome: list[ServiceRequest] = []

        async def decide(doc: Document) -> Change | None:
            request = _from_document(doc)
            outcome[:] = [request]
            if not any(r.id == referral_id for r in request.referrals):
                raise NotStored(referral_id)
            offered_before = _offered(request)
            if not await command(request):
                return None
            await self._index_offers_of({request.id: request}, {request.id: _offered(request) - offered_before})
            return _change(request, clock())

        written = await self.docs.change(request_id_of(referral_id), decide)
        if written is None:
            raise NotStored(referral_id)
        request = outcome[0]
        request.version, request.pending = written["version"], []
        return request

    async def mutate_many(
        self,
        request_ids: list[str],
        decide: Callable[[dict[str, ServiceRequest]], Awaitable[dict[str, ServiceRequest]]],
        clock: Callable[[], datetime],
    ) -> set[str]:
        """Lets `decide` change any of the requests (returning those it changed) and saves them all in one bulk
        write; returns the ids whose save lost a race with another writer (not saved)."""

        async def changes(docs: dict[str, Document]) -> dict[str, Change]:
            requests = {request_id: _from_document(doc) for request_id, doc in docs.items()}
            offered_before = {request_id: _offered(request) for request_id, request in requests.items()}
            changed = await decide(requests)
            new_offers = {rid: _offered(req) - offered_before[rid] for rid, req in changed.items()}
            await self._index_offers_of(changed, new_offers)
            now = clock()
            return {request_id: _change(request, now) for request_id, request in changed.items()}

        return await self.docs.change_many(request_ids, changes)

    async def page(
        self, chosen: RequestFilter, limit: int, after: str | None, include_after: bool = False
    ) -> list[ServiceRequest]:
        """Newest first, starting below `after` (or at it, with `include_after`)."""
        query: Document = {}
        if chosen.partner_id is not None:
            ids = await self._offered_to(chosen.partner_id, limit, after, include_after)
            query["_id"] = {"$in": ids}
        elif after is not None:
            query["_id"] = {"$lte" if include_after else "$lt": after}
        if chosen.enterprise_id is not None:
            query["enterprise_id"] = chosen.enterprise_id
        if chosen.status is not None and chosen.partner_id is None:  # a partner's page is filtered by its caller
            query[f"statuses.{chosen.status.value}"] = {"$gt": 0}
        docs = self.collection.find(query, projection={"outbox": 0}).sort("_id", -1).limit(limit)
        return [_from_document(doc) async for doc in docs]

    async def _offered_to(self, partner_id: str, limit: int, after: str | None, include_after: bool) -> list[str]:
        query: Document = {"partner_id": partner_id}
        if after is not None:
            query["request_id"] = {"$lte" if include_after else "$lt": after}
        found = self.offers.find(query, projection={"request_id": 1}).sort("request_id", -1).limit(limit)
        return [doc["request_id"] async for doc in found]

    async def _index_offers_of(self, requests: dict[str, ServiceRequest], partners: dict[str, set[str]]) -> None:
        """Written before the requests themselves: an entry whose write then lost the race points at a request the
        partner cannot see (lists check visibility), while an offer is never missing from its partner's list."""
        docs = [
            {"_id": f"{p}:{request_id}", "partner_id": p, "request_id": request_id}
            for request_id in requests
            for p in sorted(partners.get(request_id, ()))
        ]
        if docs:
            with contextlib.suppress(BulkWriteError):  # written before by a run that lost the race: the same entries
                await self.offers.insert_many(docs, ordered=False)

    async def referral_documents(self, status: ReferralStatus | None = None) -> list[Document]:
        """Every request's name and referrals as stored (the console's tables), optionally only those with a
        referral in `status`."""
        query = {f"statuses.{status.value}": {"$gt": 0}} if status else {}
        found = self.collection.find(query, projection={"enterprise_name": 1, "referrals": 1})
        return [doc async for doc in found]

    async def referral_counts(self) -> dict[str, int]:
        """Referrals by status, across every request (a scan of the `statuses` summaries)."""
        counts = dict.fromkeys((s.value for s in ReferralStatus), 0)
        async for doc in self.collection.find({}, projection={"statuses": 1}):
            for status, count in (doc.get("statuses") or {}).items():
                counts[status] = counts.get(status, 0) + count
        return counts


def _change(request: ServiceRequest, now: datetime) -> Change:
    fields = _to_document(request, now)
    del fields["_id"]
    return Change(fields, request.pending)


def _offered(request: ServiceRequest) -> set[str]:
    return {p for r in request.referrals for p in r.offered_to}


def _key_id(enterprise_id: str, key: str) -> str:
    return f"{enterprise_id}:{key}"


def _to_document(request: ServiceRequest, now: datetime) -> Document:
    doc: Document = {
        "_id": request.id,
        "enterprise_id": request.enterprise_id,
        "enterprise_name": request.enterprise_name,
        "created_at": request.created_at,
        "updated_at": now,
        "status": request.status,
        "statuses": request.progress,
        "idempotency_key": request.idempotency_key,
        "referrals": [_referral_doc(r) for r in request.referrals],
    }
    if request.idempotency_key:  # absent otherwise: the unique index only holds requests that have a key
        doc["idempotency_key_id"] = _key_id(request.enterprise_id, request.idempotency_key)
    return doc


def _referral_doc(referral: Referral) -> Document:
    # One level of copies, not `dataclasses.asdict`: its deep copy of every value (the `need` model included) cost
    # 3 % of intake's CPU per submission. The entries of these lists are never changed in place once written.
    doc: Document = {f.name: copy.copy(getattr(referral, f.name)) for f in fields(referral)}
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
