"""The cache of verified API keys (intake.auth.cache): pure, driven by a fake clock.

A stateful hypothesis test runs random interleavings of lookups, database answers, hits, evictions and clock
steps against a reference model, and checks the promises the TTL bound rests on: nothing is served longer than
the TTL after its database read began (hits never extend it), an eviction wins over a read in flight, the size
stays bounded, least recently used entries go first.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from pydantic import ValidationError

from intake.auth.cache import MAX_TTL_S, Lookup, VerifiedKey, VerifiedKeyCache
from intake.auth.keys import Principal, Role, hash_secret, issue_key, parse_key
from intake.settings import API_KEYS_RETENTION_MS, IntakeSettings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY_IDS = [f"{n:016x}" for n in range(6)]


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def verified(key_id: str, secret: str = "s", expires_at: datetime | None = None) -> VerifiedKey:
    return VerifiedKey(Principal(Role.PARTNER, f"partner-{key_id}", key_id), hash_secret(secret), expires_at)


# -- examples -------------------------------------------------------------------------------------------------------


def test_a_verified_key_is_served_until_the_ttl_from_its_read_and_not_after() -> None:
    clock = FakeClock()
    cache = VerifiedKeyCache(ttl_s=5, clock=clock)
    lookup = cache.lookup()
    clock.now += 0.5  # the database read takes half a second
    cache.put("a", verified("a"), lookup)
    clock.now = lookup.started + 4.999
    assert cache.get("a") == verified("a")
    clock.now = lookup.started + 5.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_hits_do_not_extend_an_entry() -> None:
    clock = FakeClock()
    cache = VerifiedKeyCache(ttl_s=2, clock=clock)
    cache.put("a", verified("a"), cache.lookup())
    for _ in range(19):
        clock.now += 0.1
        assert cache.get("a") is not None
    clock.now += 0.1
    assert cache.get("a") is None


def test_an_eviction_during_the_database_read_keeps_its_answer_out() -> None:
    cache = VerifiedKeyCache(ttl_s=5, clock=FakeClock())
    lookup = cache.lookup()
    cache.evict("a")  # the revocation arrives while the read (which saw the key valid) is in flight
    cache.put("a", verified("a"), lookup)
    assert cache.get("a") is None
    cache.put("a", verified("a"), cache.lookup())  # a read begun after the revocation is trusted again
    assert cache.get("a") is not None


def test_evict_removes_at_once() -> None:
    cache = VerifiedKeyCache(ttl_s=5, clock=FakeClock())
    cache.put("a", verified("a"), cache.lookup())
    cache.put("b", verified("b"), cache.lookup())
    cache.evict("a")
    assert cache.get("a") is None
    assert cache.get("b") is not None


def test_ttl_zero_caches_nothing() -> None:
    cache = VerifiedKeyCache(ttl_s=0, clock=FakeClock())
    cache.put("a", verified("a"), cache.lookup())
    assert not cache.enabled
    assert cache.get("a") is None
    assert len(cache) == 0


def test_an_answer_that_arrives_after_the_ttl_is_not_kept() -> None:
    clock = FakeClock()
    cache = VerifiedKeyCache(ttl_s=1, clock=clock)
    lookup = cache.lookup()
    clock.now += 1.5  # a very slow read
    cache.put("a", verified("a"), lookup)
    assert cache.get("a") is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = VerifiedKeyCache(ttl_s=5, max_entries=2, clock=FakeClock())
    cache.put("a", verified("a"), cache.lookup())
    cache.put("b", verified("b"), cache.lookup())
    assert cache.get("a") is not None  # b is now the least recently used
    cache.put("c", verified("c"), cache.lookup())
    assert (cache.get("a") is not None, cache.get("b") is None, cache.get("c") is not None) == (True, True, True)


@pytest.mark.parametrize("ttl_s", [-0.1, MAX_TTL_S + 0.001, 60])
def test_a_ttl_outside_0_to_5_seconds_is_refused(ttl_s: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        VerifiedKeyCache(ttl_s=ttl_s)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        VerifiedKeyCache(ttl_s=5, max_entries=0)


def test_an_entry_holds_the_stored_hash_never_the_secret() -> None:
    issued = issue_key()
    parsed = parse_key(issued.plaintext)
    assert parsed is not None
    key_id, secret = parsed
    entry = verified(key_id, secret)
    assert entry.secret_hash == issued.secret_hash
    assert secret not in repr(entry) and issued.plaintext not in repr(entry)
    assert entry.accepts(secret, NOW)
    assert not entry.accepts(secret[:-1] + ("A" if secret[-1] != "A" else "B"), NOW)


def test_an_entry_refuses_its_key_once_the_key_itself_expired() -> None:
    entry = verified("a", "s", expires_at=NOW + timedelta(seconds=1))
    assert entry.accepts("s", NOW)
    assert not entry.accepts("s", NOW + timedelta(seconds=1))


@given(st.text(max_size=60), st.text(max_size=60))
def test_accepts_exactly_the_secret_of_the_hash(secret: str, presented: str) -> None:
    assert verified("a", secret).accepts(presented, NOW) is (presented == secret)


# -- settings -------------------------------------------------------------------------------------------------------


def test_settings_default_to_5_seconds_and_a_prefixed_short_lived_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGLOBAL_TOPIC_PREFIX", "staging.")
    settings = IntakeSettings()
    assert settings.api_key_cache_ttl_s == 5.0
    assert settings.api_key_cache_max_entries == 10_000
    assert settings.api_keys_topic == "staging.goglobal.api-keys"
    assert settings.topic_configs[settings.api_keys_topic] == {"retention.ms": str(API_KEYS_RETENTION_MS)}
    assert settings.topic_configs[settings.partners_topic] == {"cleanup.policy": "compact"}  # kept from the base


@pytest.mark.parametrize("value", ["0", "0.25", "5"])
def test_ttl_setting_accepts_0_to_5(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GOGLOBAL_API_KEY_CACHE_TTL_S", value)
    assert IntakeSettings().api_key_cache_ttl_s == float(value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("GOGLOBAL_API_KEY_CACHE_TTL_S", "5.01"),
        ("GOGLOBAL_API_KEY_CACHE_TTL_S", "-1"),
        ("GOGLOBAL_API_KEY_CACHE_MAX_ENTRIES", "0"),
    ],
)
def test_ttl_setting_refuses_the_rest(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError, match=var.removeprefix("GOGLOBAL_").lower()):
        IntakeSettings()


# -- the model ------------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """What the cache promises, written the obvious way."""

    ttl_s: float
    max_entries: int
    entries: dict[str, float] = field(default_factory=dict)  # key id -> valid until; insertion order = LRU order
    evictions: int = 0

    def get(self, key_id: str, now: float) -> bool:
        until = self.entries.get(key_id)
        if until is None:
            return False
        del self.entries[key_id]
        if now >= until:
            return False
        self.entries[key_id] = until  # most recently used
        return True

    def put(self, key_id: str, lookup: Lookup, now: float) -> None:
        until = lookup.started + self.ttl_s
        if self.ttl_s == 0 or lookup.evictions != self.evictions or now >= until:
            return
        self.entries.pop(key_id, None)
        self.entries[key_id] = until
        while len(self.entries) > self.max_entries:
            del self.entries[next(iter(self.entries))]


class CacheMachine(RuleBasedStateMachine):
    lookups = Bundle("lookups")

    @initialize(ttl_s=st.sampled_from([0.0, 0.5, 2.0, MAX_TTL_S]), max_entries=st.integers(1, 4))
    def setup(self, ttl_s: float, max_entries: int) -> None:
        self.clock = FakeClock()
        self.cache = VerifiedKeyCache(ttl_s, max_entries, clock=self.clock)
        self.model = Model(ttl_s, max_entries)
        self.read_started: dict[str, float] = {}  # key id -> when the read behind its current entry began

    @rule(target=lookups, key_id=st.sampled_from(KEY_IDS))
    def begin_read(self, key_id: str) -> tuple[str, Lookup]:
        return key_id, self.cache.lookup()

    @rule(read=lookups)
    def answer(self, read: tuple[str, Lookup]) -> None:
        key_id, lookup = read
        self.cache.put(key_id, verified(key_id), lookup)
        before = dict(self.model.entries)
        self.model.put(key_id, lookup, self.clock.now)
        if self.model.entries.get(key_id) != before.get(key_id):
            self.read_started[key_id] = lookup.started

    @rule(key_id=st.sampled_from(KEY_IDS))
    def get(self, key_id: str) -> None:
        found = self.cache.get(key_id)
        assert (found is not None) == self.model.get(key_id, self.clock.now)
        if found is not None:
            assert found.principal.key_id == key_id
            assert self.clock.now - self.read_started[key_id] < self.model.ttl_s  # the bound itself

    @rule(key_id=st.sampled_from(KEY_IDS))
    def evict(self, key_id: str) -> None:
        self.cache.evict(key_id)
        self.model.evictions += 1
        self.model.entries.pop(key_id, None)
        assert self.cache.get(key_id) is None

    @rule(seconds=st.floats(0, 3, allow_nan=False))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def bounded(self) -> None:
        assert len(self.cache) <= self.cache.max_entries
        if not self.cache.enabled:
            assert len(self.cache) == 0


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
