"""Ranks the partners for a referral: pure (no I/O), explainable and capacity-aware.

The same partners, request, stats and weights always give the same answer, whatever order the partners come in.

Matching happens in two steps:

1. **Retrieval** (`DirectoryIndex.candidates`, or the `brute_force_candidates` baseline): the active partners that
   offer the category and cover every country of every requested market. A region market ("MIDDLE_EAST") needs
   all of its member countries; a partner covering a region covers each of its member countries.
2. **Ranking** (`rank`): the hard filters of `eligible` (active; offers the category; covers every market; has a
   free slot, i.e. ``open_referrals < capacity``; not in ``request.exclude``), then a weighted mean of seven
   factors, then a fairness band.

Factors (each in [0, 1]; the score is ``sum(weight * factor) / sum(weights)``, rounded to 4 decimals):

- **market**: per requested market, 1.0 if the partner lists it by name (the country, or the region; a region
  whose member countries are all listed by name counts as named too), 0.8 if it is only covered through a
  region the partner lists; the mean over the requested markets (1.0 when no market is requested).
- **sector**: the enterprise's ISIC code against the partner's. No enterprise sector: 0.5. The partner lists
  no sectors (a generalist): 0.5. The enterprise gives a division ("C27") that the partner lists: 1.0. The
  partner lists the section ("C") of the enterprise's division, or the enterprise gives only a section and the
  partner lists it or any of its divisions: 0.7. Anything else: 0.0.
- **language**: no language requested: 1.0. Otherwise the mean over the requested languages (duplicates
  dropped, case-insensitively) of 1.0 when the partner speaks the full tag ("zh-Hans" for "zh-Hans"), 0.5 when
  it only shares the primary subtag ("zh" or "zh-Hant" for "zh-Hans"), else 0.0.
- **specialty**: the partner's specialties for the requested category against the words of the description
  (case-insensitive; a specialty matches when all of its words appear). No specialties listed, or a
  description without words: 0.5. At least one match: ``0.5 + 0.5 * min(1, matches / 2)``. No match: 0.25.
- **quality**: the mean of three Bayesian-smoothed rates, each clamped to [0, 1], whose priors keep a new
  partner from being starved (a partner with no history scores 0.5833):
  acceptance ``(accepted + 2) / (offers + 4)``, completion ``(completed + 1) / (accepted + 2)`` and rating
  ``((rating_sum + 4 * 2) / (rating_count + 2) - 1) / 4`` (two phantom 4-star ratings, mapped from 1..5).
- **load**: the free share of capacity, ``(capacity - open_referrals) / capacity``.
- **speed**: no recorded responses: 0.5. Otherwise ``max(0, 1 - mean_response_hours / response_window_hours)``.

Fairness: the candidates whose score is within ``fairness_margin`` of the best score (inclusive) form the top
band. Inside the band, the least recently offered partner comes first (never offered first, then the oldest
``last_offered_at``; a naive datetime is read as UTC), then the lowest id. Below the band, the highest score comes
first, then the lowest id. So partners of about equal merit take turns instead of the same one winning every time.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from goglobal_contract.enums import ServiceCategory
from goglobal_contract.events import PartnerUpserted
from goglobal_contract.identifiers import LanguageTag, MarketCode
from goglobal_contract.markets import REGIONS, expand
from goglobal_contract.sectors import SectorCode

__all__ = [
    "Candidate",
    "DirectoryIndex",
    "Partner",
    "PartnerStats",
    "Request",
    "Weights",
    "brute_force_candidates",
    "eligible",
    "partner_from_event",
    "rank",
]

_K = TypeVar("_K")

_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> frozenset[str]:
    """The lower-case words of a text ("E-commerce, VAT" -> {"e", "commerce", "vat"})."""
    return frozenset(_WORD.findall(text.lower()))


@lru_cache(maxsize=4096)
def _specialty_words(phrases: frozenset[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each specialty with its words, sorted; cached, as partners share their vocabulary."""
    return tuple((phrase, words) for phrase in sorted(phrases) if (words := _words(phrase)))


def _countries(markets: Iterable[str]) -> frozenset[str]:
    """Every country the markets stand for (regions expanded to their members)."""
    found: set[str] = set()
    for market in markets:
        found |= expand(market)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What matching derives from a partner once, so that retrieval and ranking stay cheap."""

    countries: frozenset[str]  # every country covered, regions expanded
    named_countries: frozenset[str]  # countries listed by name
    regions: tuple[str, ...]  # regions listed, sorted
    languages: dict[str, str]  # lower-case tag -> tag as listed
    primaries: dict[str, str]  # lower-case primary subtag -> the (first, sorted) tag listed with it
    specialties: dict[ServiceCategory, tuple[tuple[str, frozenset[str]], ...]]  # sorted (phrase, words)


class Partner(BaseModel):
    """A partner as matching sees it: what it offers, where, for whom, and how much it can take on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    categories: dict[ServiceCategory, frozenset[str]] = Field(min_length=1)
    markets: frozenset[MarketCode] = Field(min_length=1)
    sectors: frozenset[SectorCode] = frozenset()
    languages: frozenset[LanguageTag] = frozenset()
    capacity: int = Field(default=10, ge=1)
    response_window_hours: int = Field(default=48, ge=1)
    active: bool = True

    @field_validator("categories")
    @classmethod
    def _normalise_specialties(
        cls, value: dict[ServiceCategory, frozenset[str]]
    ) -> dict[ServiceCategory, frozenset[str]]:
        # Specialties are compared with lower-case words, so store them lower-case with single spaces.
        return {
            category: frozenset(clean for s in specialties if (clean := " ".join(s.lower().split())))
            for category, specialties in value.items()
        }

    @cached_property
    def _facts(self) -> _Facts:
        regions = tuple(sorted(m for m in self.markets if m in REGIONS))
        languages = {tag.lower(): tag for tag in sorted(self.languages)}
        primaries: dict[str, str] = {}
        for lower, tag in languages.items():
            primaries.setdefault(lower.split("-", 1)[0], tag)
        specialties = {category: _specialty_words(phrases) for category, phrases in self.categories.items()}
        return _Facts(
            countries=_countries(self.markets),
            named_countries=frozenset(m for m in self.markets if m not in REGIONS),
            regions=regions,
            languages=languages,
            primaries=primaries,
            specialties=specialties,
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "Partner":
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("_facts", None)  # derived from the fields, which `update` may have changed
        return copy


def partner_from_event(event: PartnerUpserted) -> Partner:
    """The partner a directory event describes. Raises `pydantic.ValidationError` if the event breaks the rules."""
    categories: dict[ServiceCategory, frozenset[str]] = {}
    for entry in event.categories:
        categories[entry.category] = categories.get(entry.category, frozenset()) | frozenset(entry.specialties)
    return Partner(
        id=event.partner_id,
        name=event.name,
        categories=categories,
        markets=frozenset(event.markets),
        sectors=frozenset(event.sectors),
        languages=frozenset(event.languages),
        capacity=event.capacity,
        response_window_hours=event.response_window_hours,
        active=event.active,
    )


@dataclass(frozen=True)
class PartnerStats:
    """A partner's history, as the quality, load and speed factors use it. The defaults describe a new partner."""

    open_referrals: int = 0
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    completed: int = 0
    rating_sum: int = 0
    rating_count: int = 0
    response_hours_sum: float = 0.0
    responses: int = 0
    last_offered_at: datetime | None = None


_NEW_PARTNER = PartnerStats()


@dataclass(frozen=True)
class Request:
    """One need of a referral, as matching sees it."""

    category: ServiceCategory
    markets: list[str]
    languages: list[str] = field(default_factory=list)
    sector: str | None = None
    description: str = ""
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Weights:
    """How much each factor counts. Each must be finite and >= 0, and at least one > 0; they need not sum to 1."""

    market: float = 0.30
    sector: float = 0.10
    language: float = 0.15
    specialty: float = 0.15
    quality: float = 0.15
    load: float = 0.10
    speed: float = 0.05

    def __post_init__(self) -> None:
        values = [getattr(self, f.name) for f in fields(self)]
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError(f"weights must be finite and >= 0, got {self}")
        if sum(values) <= 0:
            raise ValueError("at least one weight must be > 0")


FACTORS: tuple[str, ...] = tuple(f.name for f in fields(Weights))


@dataclass(frozen=True)
class Candidate:
    """A ranked partner: its score, each factor's value and the reasons, in words, behind them."""

    partner: Partner
    score: float
    factors: dict[str, float]
    reasons: list[str]


# --- retrieval -------------------------------------------------------------------------------------------------


class DirectoryIndex:
    """In-memory candidate retrieval by (category, country); region coverage expands to member countries.

    Keeps the newest version of every partner. Only active partners are indexed, so `candidates` never returns
    an inactive one; `get`, `partners` and `len` see every partner held, active or not.
    """

    def __init__(self) -> None:
        self._partners: dict[str, Partner] = {}
        self._versions: dict[str, int] = {}
        self._by_category: dict[ServiceCategory, set[str]] = {}
        self._by_key: dict[tuple[ServiceCategory, str], set[str]] = {}

    def upsert(self, partner: Partner, version: int) -> bool:
        """Stores the partner; False (and nothing changes) if an equal or newer version is already held."""
        held = self._versions.get(partner.id)
        if held is not None and held >= version:
            return False
        previous = self._partners.get(partner.id)
        if previous is not None:
            self._unlink(previous)
        self._partners[partner.id] = partner
        self._versions[partner.id] = version
        if partner.active:
            self._link(partner)
        return True

    def get(self, partner_id: str) -> Partner | None:
        return self._partners.get(partner_id)

    def candidates(self, category: ServiceCategory, markets: list[str]) -> list[Partner]:
        """Active partners offering `category` that cover every country of every market, sorted by id.

        Intersects the (category, country) id sets starting from the smallest, so the cost follows the size of
        the candidate sets, not of the directory.
        """
        if not markets:
            return self._sorted(self._by_category.get(category, set()))
        sets: list[set[str]] = []
        for country in _countries(markets):
            ids = self._by_key.get((category, country))
            if not ids:
                return []
            sets.append(ids)
        sets.sort(key=len)
        found = set(sets[0])
        for ids in sets[1:]:
            found &= ids  # CPython iterates over the smaller side
            if not found:
                return []
        return self._sorted(found)

    def __len__(self) -> int:
        return len(self._partners)

    def partners(self) -> list[Partner]:
        """Every partner held (active or not), sorted by id."""
        return [self._partners[pid] for pid in sorted(self._partners)]

    def _sorted(self, ids: set[str]) -> list[Partner]:
        return [self._partners[pid] for pid in sorted(ids)]

    def _link(self, partner: Partner) -> None:
        countries = partner._facts.countries
        for category in partner.categories:
            self._by_category.setdefault(category, set()).add(partner.id)
            for country in countries:
                self._by_key.setdefault((category, country), set()).add(partner.id)

    def _unlink(self, partner: Partner) -> None:
        if not partner.active:
            return
        countries = partner._facts.countries
        for category in partner.categories:
            _discard(self._by_category, category, partner.id)
            for country in countries:
                _discard(self._by_key, (category, country), partner.id)


def _discard(index: dict[_K, set[str]], key: _K, partner_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(partner_id)
        if not ids:
            del index[key]  # keep memory proportional to what is indexed


def brute_force_candidates(partners: Iterable[Partner], request: Request) -> list[Partner]:
    """The benchmark's baseline: scans every partner with the active/category/market filters; sorted by id."""
    needed = _countries(request.markets)
    category = request.category
    found = [p for p in partners if p.active and category in p.categories and needed <= p._facts.countries]
    return sorted(found, key=lambda p: p.id)


# --- ranking ---------------------------------------------------------------------------------------------------


def eligible(partner: Partner, request: Request, stats: PartnerStats) -> bool:
    """The hard filters: active, offers the category, covers every market, has a free slot, not excluded."""
    return _passes(partner, request.category, _countries(request.markets), request.exclude, stats)


def _passes(
    partner: Partner, category: ServiceCategory, countries: frozenset[str], exclude: frozenset[str], stats: PartnerStats
) -> bool:
    return (
        partner.active
        and category in partner.categories
        and countries <= partner._facts.countries
        and stats.open_referrals < partner.capacity
        and partner.id not in exclude
    )


@dataclass(frozen=True, slots=True)
class _Need:
    """The request, prepared once per `rank` call."""

    category: ServiceCategory
    markets: tuple[tuple[str, frozenset[str]], ...]  # (market, its countries), duplicates dropped
    countries: frozenset[str]
    languages: tuple[tuple[str, str, str], ...]  # (tag as given, lower-case tag, lower-case primary subtag)
    sector: str | None
    words: frozenset[str]
    exclude: frozenset[str]
    offers: str  # the first reason of every candidate

    @classmethod
    def of(cls, request: Request) -> "_Need":
        markets = tuple((m, expand(m)) for m in dict.fromkeys(request.markets))
        languages: dict[str, tuple[str, str, str]] = {}
        for tag in request.languages:
            lower = tag.strip().lower()
            if lower and lower not in languages:
                languages[lower] = (tag.strip(), lower, lower.split("-", 1)[0])
        sector = request.sector.strip().upper() if request.sector and request.sector.strip() else None
        return cls(
            category=request.category,
            markets=markets,
            countries=_countries(request.markets),
            languages=tuple(languages.values()),
            sector=sector,
            words=_words(request.description),
            exclude=request.exclude,
            offers=f"offers {request.category.value}",
        )


def _join(items: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _market(facts: _Facts, partner: Partner, need: _Need, reasons: list[str]) -> float:
    if not need.markets:
        return 1.0
    named: list[str] = []
    through: dict[tuple[str, ...], list[str]] = {}
    total = 0.0
    for market, countries in need.markets:
        if market in partner.markets or countries <= facts.named_countries:
            named.append(market)
            total += 1.0
        elif countries <= facts.countries:
            via = tuple(r for r in facts.regions if REGIONS[r] & countries)
            through.setdefault(via, []).append(market)
            total += 0.8
    if named:
        reasons.append(f"covers {_join(named)}")
    for via, markets in through.items():
        reasons.append(f"covers {_join(markets)} through {_join(list(via))}")
    return total / len(need.markets)


def _sector(partner: Partner, need: _Need, reasons: list[str]) -> float:
    code = need.sector
    if code is None or not partner.sectors:
        return 0.5
    section = code[0]
    if len(code) > 1 and code in partner.sectors:
        reasons.append(f"sector {code} experience")
        return 1.0
    if section in partner.sectors or (len(code) == 1 and any(s[0] == section for s in partner.sectors)):
        reasons.append(f"sector {section} experience")
        return 0.7
    return 0.0


def _language(facts: _Facts, need: _Need, reasons: list[str]) -> float:
    if not need.languages:
        return 1.0
    full: list[str] = []
    partial: list[str] = []
    total = 0.0
    for asked, lower, primary in need.languages:
        if lower in facts.languages:
            full.append(facts.languages[lower])
            total += 1.0
        elif primary in facts.primaries:
            partial.append(f"speaks {facts.primaries[primary]}, close to {asked}")
            total += 0.5
    if full:
        reasons.append(f"speaks {', '.join(full)}")
    reasons.extend(partial)
    return total / len(need.languages)


def _specialty(facts: _Facts, need: _Need, reasons: list[str]) -> float:
    specialties = facts.specialties.get(need.category, ())
    if not specialties or not need.words:
        return 0.5
    matches = [phrase for phrase, words in specialties if words <= need.words]
    if not matches:
        return 0.25
    reasons.append(f"{'specialty' if len(matches) == 1 else 'specialties'}: {', '.join(matches)}")
    return 0.5 + 0.5 * min(1.0, len(matches) / 2)


def _clamp(value: float) -> float:
    return value if 0.0 <= value <= 1.0 else min(1.0, max(0.0, value))


def _quality(stats: PartnerStats, reasons: list[str]) -> float:
    acceptance = _clamp((stats.accepted + 2) / (stats.offers + 4))
    completion = _clamp((stats.completed + 1) / (stats.accepted + 2))
    rating = _clamp(((stats.rating_sum + 4 * 2) / (stats.rating_count + 2) - 1) / 4)
    if stats.offers > 0:
        reasons.append(f"accepted {stats.accepted} of {stats.offers} offers")
    else:
        reasons.append("new partner: no offers yet")
    if stats.accepted > 0:
        reasons.append(f"completed {stats.completed} of {stats.accepted} accepted")
    if stats.rating_count > 0:
        reasons.append(f"rated {round(stats.rating_sum / stats.rating_count, 1):g}/5 ({stats.rating_count})")
    return (acceptance + completion + rating) / 3


def _load(partner: Partner, stats: PartnerStats, reasons: list[str]) -> float:
    reasons.append(f"{stats.open_referrals} of {partner.capacity} slots used")
    return _clamp((partner.capacity - stats.open_referrals) / partner.capacity)


def _speed(partner: Partner, stats: PartnerStats, reasons: list[str]) -> float:
    if stats.responses <= 0:
        return 0.5
    hours = stats.response_hours_sum / stats.responses
    reasons.append("answers in < 1 h" if hours < 1 else f"answers in ~{round(hours)} h")
    return _clamp(1 - hours / partner.response_window_hours)


def _assess(partner: Partner, need: _Need, stats: PartnerStats, weights: Weights, total: float) -> Candidate:
    facts = partner._facts
    reasons = [need.offers]
    market = _market(facts, partner, need, reasons)
    language = _language(facts, need, reasons)
    sector = _sector(partner, need, reasons)
    specialty = _specialty(facts, need, reasons)
    load = _load(partner, stats, reasons)
    quality = _quality(stats, reasons)
    speed = _speed(partner, stats, reasons)
    weighted = (
        weights.market * market
        + weights.sector * sector
        + weights.language * language
        + weights.specialty * specialty
        + weights.quality * quality
        + weights.load * load
        + weights.speed * speed
    )
    factors = {
        "market": round(market, 4),
        "sector": sector,  # exact by construction (0, 0.5, 0.7 or 1)
        "language": round(language, 4),
        "specialty": specialty,  # exact by construction (0.25, 0.5, 0.75 or 1)
        "quality": round(quality, 4),
        "load": round(load, 4),
        "speed": round(speed, 4),
    }
    return Candidate(partner, round(_clamp(weighted / total), 4), factors, reasons)


def _offered_key(stats: PartnerStats) -> tuple[int, float]:
    """Never offered first, then the oldest offer first (a naive datetime is read as UTC)."""
    at = stats.last_offered_at
    if at is None:
        return (0, 0.0)
    return (1, (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp())


def rank(
    partners: Iterable[Partner],
    request: Request,
    stats: Mapping[str, PartnerStats],
    weights: Weights = Weights(),
    fairness_margin: float = 0.05,
) -> list[Candidate]:
    """The eligible partners, best first (see the module docstring for the factors and the fairness band).

    Missing stats mean a new partner. A partner id given twice is taken once if both are equal; two different
    partners with one id raise `ValueError` (the order between them could not be decided).
    """
    if not math.isfinite(fairness_margin) or fairness_margin < 0:
        raise ValueError(f"fairness_margin must be finite and >= 0, got {fairness_margin}")
    need = _Need.of(request)
    total = sum(getattr(weights, name) for name in FACTORS)
    seen: dict[str, Partner] = {}
    found: list[tuple[Candidate, PartnerStats]] = []
    for partner in partners:
        if partner.id in seen:
            if seen[partner.id] != partner:
                raise ValueError(f"two different partners share the id {partner.id!r}")
            continue
        seen[partner.id] = partner
        history = stats.get(partner.id, _NEW_PARTNER)
        if not _passes(partner, need.category, need.countries, need.exclude, history):
            continue
        found.append((_assess(partner, need, history, weights, total), history))
    if not found:
        return []
    floor = max(c.score for c, _ in found) - fairness_margin - 1e-9  # the epsilon absorbs float noise
    band = [(c, h) for c, h in found if c.score >= floor]
    rest = [c for c, _ in found if c.score < floor]
    band.sort(key=lambda ch: (*_offered_key(ch[1]), ch[0].partner.id))
    rest.sort(key=lambda c: (-c.score, c.partner.id))
    return [c for c, _ in band] + rest
