"""Ranks the partners for a referral. Pure: the same partners and request always give the same answer."""

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from goglobal_shared.domain.identifiers import MarketCode
from goglobal_shared.enums import ServiceCategory
from goglobal_shared.markets import REGIONS, covers


class Partner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    categories: frozenset[ServiceCategory] = Field(min_length=1)
    markets: frozenset[MarketCode] = Field(min_length=1)
    languages: frozenset[str] = frozenset()
    capacity: int = Field(default=10, ge=1)
    response_window_hours: int = Field(default=48, ge=1)
    active: bool = True


@dataclass(frozen=True)
class Request:
    category: ServiceCategory
    markets: list[str]
    languages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    partner: Partner
    score: float
    reasons: list[str]


def _market_fit(partner: Partner, markets: list[str]) -> tuple[float, list[str]]:
    """1.0 when every market is covered by name; region-only coverage of a country counts a little less."""
    exact = [m for m in markets if m in partner.markets]
    via_region = [m for m in markets if m not in partner.markets]
    score = (len(exact) + 0.8 * len(via_region)) / len(markets)
    reasons = [f"covers {' and '.join(exact)}"] if exact else []
    regions = sorted(r for r in partner.markets if r in REGIONS)
    if via_region:
        reasons.append(f"covers {' and '.join(via_region)} through {', '.join(regions)}")
    return score, reasons


def _language_fit(partner: Partner, languages: list[str]) -> tuple[float, list[str]]:
    if not languages:
        return 1.0, []
    shared = [lang for lang in languages if lang in partner.languages]
    return (len(shared) / len(languages), [f"speaks {', '.join(shared)}"] if shared else [])


def eligible(partner: Partner, category: ServiceCategory, markets: list[str]) -> bool:
    return partner.active and category in partner.categories and all(covers(partner.markets, m) for m in markets)


def rank(partners: list[Partner], request: Request) -> list[Match]:
    """Eligible partners, best first: market fit weighs 0.7, language overlap 0.3; ties go to the lowest id."""
    matches = []
    for partner in partners:
        if not eligible(partner, request.category, request.markets):
            continue
        market, market_reasons = _market_fit(partner, request.markets)
        language, language_reasons = _language_fit(partner, request.languages)
        score = round(0.7 * market + 0.3 * language, 4)
        matches.append(Match(partner, score, [f"offers {request.category.value}", *market_reasons, *language_reasons]))
    return sorted(matches, key=lambda m: (-m.score, m.partner.id))


def pick_best(partners: list[Partner], category: ServiceCategory, markets: list[str]) -> Match | None:
    ranked = rank(partners, Request(category, markets))
    return ranked[0] if ranked else None
