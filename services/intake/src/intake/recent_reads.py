"""Documents read from the database kept in memory for a few seconds, so a hot path need not read them each time.

Pure and synchronous (no awaits inside a method, so each call is atomic on the event loop); the clock is injected.

- Only what the database said is kept, and only after it said it.
- An entry lives at most `ttl_s` from the moment its database read began. Hits do not extend it, so an entry in
  constant use is still read again at least once per `ttl_s`: a change made on another replica is seen within it.
- At most `max_entries` entries; the least recently used goes first.
- `evict` (a change made here, or a revocation broadcast) removes the entry at once, and a database read that was
  in flight meanwhile does not put it back: `put` refuses an answer read before the last eviction.

Two users: verified API keys (`intake.auth.cache`) and the enterprise a submission comes from
(`EnterpriseRepository.recent`).
"""

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")
MAX_TTL_S = 5.0  # the bound documented in docs/operations.md: a change is seen everywhere within this


@dataclass(frozen=True)
class Lookup:
    """Taken before a database read: when it began, and how many evictions had happened by then."""

    started: float
    evictions: int


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    valid_until: float


class RecentReads(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be between 0 and {MAX_TTL_S}")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._evictions = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry.valid_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    def lookup(self) -> Lookup:
        """Call before reading the database; hand the result to `put` with what was read."""
        return Lookup(self.clock(), self._evictions)

    def put(self, key: str, value: V, lookup: Lookup) -> None:
        if not self.enabled or lookup.evictions != self._evictions:
            return  # disabled, or a change came in while the database was read: that answer may be stale
        valid_until = lookup.started + self.ttl_s
        if self.clock() >= valid_until:
            return
        self._entries[key] = _Entry(value, valid_until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def evict(self, key: str) -> None:
        """Forget `key` now (it changed, or was revoked): the next read of it goes to the database."""
        self._evictions += 1
        self._entries.pop(key, None)
