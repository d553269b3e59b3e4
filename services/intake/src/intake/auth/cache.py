"""Verified API keys kept in memory for a few seconds, so that a request does not read the database for its key
(`intake.recent_reads`, which says how long an entry lives and how an eviction wins over a read in flight).

- Only successes are kept: a key gets an entry only once the database confirmed it, so an attacker cannot fill
  the cache with guesses, and no failure is ever remembered.
- An entry is keyed by the key id and holds the stored SHA-256 of the secret, never the secret: a presented key
  is checked against that hash exactly as against the database record.
- An entry lives at most `ttl_s` from the moment its database read began. Hits do not extend it, so a key in
  constant use is still read again at least once per `ttl_s`.
- At most `max_entries` entries; the least recently used goes first.
- `evict` (a revocation, local or broadcast) removes the key at once, and a database read that was in flight
  meanwhile does not put it back: `put` refuses an answer read before the last eviction.
"""

from dataclasses import dataclass
from datetime import datetime

from intake.auth.keys import Principal, secret_matches
from intake.recent_reads import MAX_TTL_S, Lookup, RecentReads

__all__ = ["MAX_TTL_S", "Lookup", "VerifiedKey", "VerifiedKeyCache"]


@dataclass(frozen=True)
class VerifiedKey:
    """What the database said about a key: who it authenticates, the hash of its secret, when it expires."""

    principal: Principal
    secret_hash: str
    expires_at: datetime | None

    def accepts(self, secret: str, now: datetime) -> bool:
        if not secret_matches(secret, self.secret_hash):
            return False
        return self.expires_at is None or self.expires_at > now


VerifiedKeyCache = RecentReads[VerifiedKey]
