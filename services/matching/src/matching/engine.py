"""Picks the partner for a referral. Pure: the same partners and request always give the same answer."""

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.events import MarketCode
from goglobal_shared.markets import REGIONS, covers


class Partner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    categories: frozenset[ServiceCategory] = Field(min_length=1)
    markets: frozenset[MarketCode] = Field(min_length=1)
    active: bool = True


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


def eligible(partner: Partner, category: ServiceCategory, markets: list[str]) -> bool:
    return partner.active and category in partner.categories and all(covers(partner.markets, m) for m in markets)


def pick_best(partners: list[Partner], category: ServiceCategory, markets: list[str]) -> Match | None:
    """The eligible partner with the best market fit; ties go to the lowest id, so results are stable."""
    best: Match | None = None
    for partner in sorted(partners, key=lambda p: p.id):
        if not eligible(partner, category, markets):
            continue
        score, reasons = _market_fit(partner, markets)
        if best is None or score > best.score:
            best = Match(partner, round(score, 4), [f"offers {category.value}", *reasons])
    return best
