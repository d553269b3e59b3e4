"""API keys: `gg_<key id>_<secret>`. Only a SHA-256 of the secret is stored; the key is shown once.

The secret has 256 bits of entropy, so a fast hash is enough (a slow password hash protects low-entropy
secrets) and lookups stay cheap on every request.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_KEY = re.compile(r"^gg_(?P<key_id>[a-z0-9]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    ENTERPRISE = "enterprise"
    PARTNER = "partner"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator, or the enterprise / partner a key belongs to."""

    role: Role
    subject_id: str
    key_id: str

    @property
    def label(self) -> str:
        return f"{self.role.value}:{self.subject_id}"


@dataclass(frozen=True)
class KeyInfo:
    """A key's record, without its secret."""

    key_id: str
    role: Role
    subject_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    plaintext: str
    secret_hash: str


def issue_key() -> IssuedKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, f"gg_{key_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.fullmatch(presented)
    return (match["key_id"], match["secret"]) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
