"""Verified API keys kept in memory for a few seconds, so that a request does not read the database for its key.

Pure and synchronous (no awaits inside a method, so each call is atomic on the event loop); the clock is injected.

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

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from intake.auth.keys import Principal, secret_matches

MAX_TTL_S = 5.0  # the bound documented in docs/operations.md: a revoked key works nowhere longer than this


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


@dataclass(frozen=True)
class Lookup:
    """Taken before a database read: when it began, and how many evictions had happened by then."""

    started: float
    evictions: int


@dataclass(frozen=True)
class _Entry:
    verified: VerifiedKey
    valid_until: float


class VerifiedKeyCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be between 0 and {MAX_TTL_S}")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._evictions = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_id: str) -> VerifiedKey | None:
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if self.clock() >= entry.valid_until:
            del self._entries[key_id]
            return None
        self._entries.move_to_end(key_id)
        return entry.verified

    def lookup(self) -> Lookup:
        """Call before reading the database; hand the result to `put` with what was read."""
        return Lookup(self.clock(), self._evictions)

    def put(self, key_id: str, verified: VerifiedKey, lookup: Lookup) -> None:
        if not self.enabled or lookup.evictions != self._evictions:
            return  # disabled, or a revocation came in while the database was read: that answer may be stale
        valid_until = lookup.started + self.ttl_s
        if self.clock() >= valid_until:
            return
        self._entries[key_id] = _Entry(verified, valid_until)
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def evict(self, key_id: str) -> None:
        """Forget `key_id` now (it was revoked): the next request with it reads the database."""
        self._evictions += 1
        self._entries.pop(key_id, None)
