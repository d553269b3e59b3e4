"""API key records: hash, owner and role; revocation keeps the record (for the audit) but disables it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.mongo import Document
from intake.auth.keys import IssuedKey, Principal, Role, issue_key, parse_key, secret_matches


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    role: Role
    subject_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("subject_id", 1), ("role", 1)])

    async def create(
        self, role: Role, subject_id: str, name: str, now: datetime, expires_at: datetime | None = None
    ) -> IssuedKey:
        key = issue_key()
        await self.collection.insert_one(
            {
                "_id": key.key_id,
                "secret_hash": key.secret_hash,
                "role": role.value,
                "subject_id": subject_id,
                "name": name,
                "created_at": now,
                "expires_at": expires_at,
                "revoked_at": None,
            }
        )
        return key

    async def authenticate(self, presented: str, now: datetime) -> Principal | None:
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        doc = await self.collection.find_one({"_id": key_id})
        if doc is None or not secret_matches(secret, doc["secret_hash"]) or doc["revoked_at"] is not None:
            return None
        if doc["expires_at"] is not None and doc["expires_at"] <= now:
            return None
        return Principal(Role(doc["role"]), doc["subject_id"], key_id)

    async def revoke(self, key_id: str, now: datetime) -> bool:
        result = await self.collection.update_one({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}})
        return result.modified_count == 1

    async def get(self, key_id: str) -> KeyInfo | None:
        doc = await self.collection.find_one({"_id": key_id})
        return _info(doc) if doc else None

    async def for_subject(self, role: Role, subject_id: str) -> list[KeyInfo]:
        docs = self.collection.find({"role": role.value, "subject_id": subject_id}).sort("created_at", 1)
        return [_info(doc) async for doc in docs]


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
