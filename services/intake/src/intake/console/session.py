"""Server-side console sessions (collection `console_sessions`).

The cookie carries a random token; the database keeps only its SHA-256 as `_id`, so a copy of the database
cannot be replayed as cookies. Expired sessions are refused on read and swept at each sign-in (no TTL index:
not every supported server has them)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pymongo.asynchronous.collection import AsyncCollection

from goglobal_shared.mongo import Document
from intake.auth.keys import KeyInfo, Principal, Role

COOKIE = "goglobal_console"
COOKIE_PATH = "/console"
LIFETIME = timedelta(hours=8)
COLLECTION = "console_sessions"


@dataclass(frozen=True)
class Flash:
    kind: str  # "ok" or "error"
    text: str


@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str
    key_id: str
    principal: str
    created_at: datetime
    expires_at: datetime
    csrf: str
    flash: Flash | None = None

    @property
    def operator(self) -> Principal:
        """The operator signed in (`principal` is their label, `operator:<name>`)."""
        return Principal(Role.OPERATOR, self.principal.removeprefix(f"{Role.OPERATOR.value}:"), self.key_id)

    def csrf_matches(self, presented: object) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(), self.csrf.encode())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def create(self, key_id: str, principal: str, now: datetime) -> str:
        """Stores a new session and returns the token for the cookie (never stored)."""
        await self.collection.delete_many({"expires_at": {"$lt": now}})
        token = secrets.token_urlsafe(32)
        await self.collection.insert_one(
            {
                "_id": token_hash(token),
                "key_id": key_id,
                "principal": principal,
                "created_at": now,
                "expires_at": now + LIFETIME,
                "csrf": secrets.token_urlsafe(32),
                "flash": None,
            }
        )
        return token

    async def get(self, token: str | None, now: datetime) -> ConsoleSession | None:
        if not token or len(token) > 100:
            return None
        doc = await self.collection.find_one({"_id": token_hash(token)})
        if doc is None or doc["expires_at"] <= now:
            return None
        flash = Flash(**doc["flash"]) if doc.get("flash") else None
        return ConsoleSession(
            doc["_id"], doc["key_id"], doc["principal"], doc["created_at"], doc["expires_at"], doc["csrf"], flash
        )

    async def delete(self, session: ConsoleSession) -> None:
        await self.collection.delete_one({"_id": session.token_hash})

    async def set_flash(self, session: ConsoleSession, kind: str, text: str) -> None:
        await self.collection.update_one({"_id": session.token_hash}, {"$set": {"flash": {"kind": kind, "text": text}}})

    async def take_flash(self, session: ConsoleSession) -> Flash | None:
        """The message for the page after a redirect, shown once."""
        if session.flash is not None:
            await self.collection.update_one({"_id": session.token_hash}, {"$set": {"flash": None}})
        return session.flash


class KeyRecords(Protocol):
    async def get(self, key_id: str) -> KeyInfo | None: ...


async def key_still_valid(keys: KeyRecords, key_id: str, now: datetime) -> bool:
    """The session's operator key is not revoked or expired (its secret is not kept, so it cannot be
    re-authenticated: the record is checked instead)."""
    info = await keys.get(key_id)
    if info is None or info.role is not Role.OPERATOR or info.revoked_at is not None:
        return False
    return info.expires_at is None or info.expires_at > now
