"""API key records: hash, owner and role; revocation keeps the record (for the audit) but disables it.

Verified keys are kept in a short-lived in-process cache (`intake.auth.cache`), so most requests read nothing.
A revocation queues an `api_key_revoked` event in the same write that marks the key revoked (the document's own
outbox, `goglobal_shared.store`); the relay publishes it on `goglobal.api-keys`, where every replica reads it and
evicts the key.
"""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_contract.envelope import Envelope
from goglobal_contract.events import ApiKeyRevoked
from goglobal_shared.mongo import Document
from goglobal_shared.store import Aggregates
from goglobal_shared.store.aggregates import Change
from goglobal_shared.store.outbox import OUTBOX, Written, ignore_written
from intake.auth.cache import VerifiedKey, VerifiedKeyCache
from intake.auth.keys import IssuedKey, KeyInfo, Principal, Role, issue_key, parse_key

SOURCE = "/goglobal/intake/api-keys"


class ApiKeyRepository:
    """`on_events` wakes the relay of this collection after a revocation queued its event. Without a `cache`,
    every authentication reads the database (the CLI, scripts and tests that only create keys)."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        on_events: Written = ignore_written,
        cache: VerifiedKeyCache | None = None,
    ) -> None:
        self.docs = Aggregates(collection, on_events)
        self.collection = collection
        self.cache = cache if cache is not None else VerifiedKeyCache(ttl_s=0)  # (an empty cache is falsy)

    async def ensure_indexes(self) -> None:
        await self.docs.ensure_indexes()
        await self.collection.create_index([("subject_id", 1), ("role", 1)])

    async def create(
        self, role: Role, subject_id: str, name: str, now: datetime, expires_at: datetime | None = None
    ) -> IssuedKey:
        key = issue_key()
        doc = {
            "_id": key.key_id,
            "secret_hash": key.secret_hash,
            "role": role.value,
            "subject_id": subject_id,
            "name": name,
            "created_at": now,
            "expires_at": expires_at,
            "revoked_at": None,
        }
        if not await self.docs.insert(doc, []):
            raise RuntimeError(f"API key {key.key_id} exists already")  # 64 random bits: never in practice
        return key

    async def authenticate(self, presented: str, now: datetime) -> Principal | None:
        """Who `presented` authenticates as, or None (malformed, unknown, wrong secret, expired, revoked). A key
        verified less than the cache's TTL ago is checked against its cached hash without a database read."""
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        cached = self.cache.get(key_id)
        if cached is not None:
            # The stored hash of a key id never changes: a secret that does not match it never will.
            return cached.principal if cached.accepts(secret, now) else None
        lookup = self.cache.lookup()
        doc = await self.docs.get(key_id)
        if doc is None or doc["revoked_at"] is not None:
            return None
        verified = VerifiedKey(
            Principal(Role(doc["role"]), doc["subject_id"], key_id), doc["secret_hash"], doc["expires_at"]
        )
        if not verified.accepts(secret, now):
            return None
        self.cache.put(key_id, verified, lookup)
        return verified.principal

    async def revoke(self, key_id: str, now: datetime) -> bool:
        """Marks the key revoked and queues its `api_key_revoked` event in the same write; False if it was revoked
        already or does not exist (nothing changes, nothing is queued). The key leaves this replica's cache at once
        either way; of two concurrent revocations exactly one applies and queues the event."""
        revoked = False

        async def decide(doc: Document) -> Change | None:
            nonlocal revoked
            revoked = doc["revoked_at"] is None  # decided again after a lost race: the last decision counts
            if not revoked:
                return None
            event = Envelope.wrap(ApiKeyRevoked(key_id=key_id, revoked_at=now), source=SOURCE, subject=key_id)
            return Change({"revoked_at": now}, [event])

        try:
            await self.docs.change(key_id, decide)
        finally:
            self.cache.evict(key_id)
        return revoked

    async def get(self, key_id: str) -> KeyInfo | None:
        doc = await self.docs.get(key_id)
        return _info(doc) if doc else None

    async def for_subject(self, role: Role, subject_id: str) -> list[KeyInfo]:
        docs = self.collection.find({"role": role.value, "subject_id": subject_id}, projection={OUTBOX: 0})
        return [_info(doc) async for doc in docs.sort("created_at", 1)]


def _info(doc: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        doc["_id"],
        Role(doc["role"]),
        doc["subject_id"],
        doc["name"],
        doc["created_at"],
        doc["expires_at"],
        doc["revoked_at"],
    )
