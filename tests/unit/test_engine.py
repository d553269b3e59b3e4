"""The matching engine: retrieval (`DirectoryIndex`, `brute_force_candidates`), hard filters, factors, fairness."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_contract.events import PartnerCategoryDetails, PartnerUpserted
from goglobal_contract.markets import REGIONS
from matching.engine import (
    Candidate,
    DirectoryIndex,
    Partner,
    PartnerStats,
    Request,
    Weights,
    brute_force_candidates,
    eligible,
    partner_from_event,
    rank,
)

LEGAL = ServiceCategory.LEGAL
TAX = ServiceCategory.TAX
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEW = PartnerStats()
DEFAULT_WEIGHTS = Weights()
FACTOR_NAMES = ["market", "sector", "language", "specialty", "quality", "load", "speed"]


def partner(
    pid: str,
    markets: set[str] | None = None,
    categories: dict[ServiceCategory, set[str]] | None = None,
    sectors: set[str] | None = None,
    languages: set[str] | None = None,
    capacity: int = 10,
    window: int = 48,
    active: bool = True,
) -> Partner:
    return Partner(
        id=pid,
        name=pid.replace("-", " ").title(),
        categories={c: frozenset(s) for c, s in (categories or {LEGAL: set()}).items()},
        markets=frozenset(markets or {"AE", "SA"}),
        sectors=frozenset(sectors or set()),
        languages=frozenset(languages or set()),
        capacity=capacity,
        response_window_hours=window,
        active=active,
    )


def request(
    markets: list[str] | None = None,
    languages: list[str] | None = None,
    sector: str | None = None,
    description: str = "",
    exclude: frozenset[str] = frozenset(),
    category: ServiceCategory = LEGAL,
) -> Request:
    return Request(category, markets or ["AE", "SA"], languages or [], sector, description, exclude)


def only(p: Partner, req: Request, stats: PartnerStats = NEW, weights: Weights = DEFAULT_WEIGHTS) -> Candidate:
    ranked = rank([p], req, {p.id: stats}, weights)
    assert len(ranked) == 1
    return ranked[0]


def factor(name: str, p: Partner, req: Request, stats: PartnerStats = NEW) -> float:
    return only(p, req, stats).factors[name]


# -- an exact ranking for a small hand-made directory -------------------------------------------------------------


def test_exact_ranking_scores_factors_and_reasons() -> None:
    directory = [
        partner("desert-law", {"AE", "SA", "GB"}, {LEGAL: {"arbitration"}}, languages={"en"}),
        partner("gulf-counsel", {"MIDDLE_EAST"}, sectors={"C"}, languages={"zh-Hant", "en"}),
        partner(
            "harbour-legal",
            {"AE", "SA"},
            {LEGAL: {"company formation", "commercial contracts"}, TAX: {"transfer pricing"}},
            sectors={"C27"},
            languages={"zh-Hans", "en"},
        ),
        partner("full-house", {"AE", "SA"}, capacity=3),  # no free slot
        partner("tax-only", {"AE", "SA"}, {TAX: set()}),  # another category
        partner("ae-only", {"AE"}),  # does not cover SA
        partner("sleeping", {"AE", "SA"}, active=False),
        partner("excluded-firm", {"AE", "SA"}),  # already offered
    ]
    stats = {
        "harbour-legal": PartnerStats(
            open_referrals=2,
            offers=5,
            accepted=4,
            declined=1,
            completed=3,
            rating_sum=9,
            rating_count=2,
            response_hours_sum=12.0,
            responses=2,
            last_offered_at=NOW,
        ),
        "desert-law": PartnerStats(open_referrals=9),
        "full-house": PartnerStats(open_referrals=3),
    }
    req = request(
        ["AE", "SA"],
        ["zh-Hans", "en"],
        "C27",
        "Company formation and commercial contracts for a Dubai subsidiary",
        frozenset({"excluded-firm"}),
    )

    ranked = rank(directory, req, stats)

    assert [(c.partner.id, c.score) for c in ranked] == [
        ("harbour-legal", 0.931),  # 0.3 + 0.1 + 0.15 + 0.15 + 0.15 * 0.7153 + 0.1 * 0.8 + 0.05 * 0.875
        ("gulf-counsel", 0.71),  # 0.3 * 0.8 + 0.1 * 0.7 + 0.15 * 0.75 + 0.15 * 0.5 + 0.15 * 0.5833 + 0.1 + 0.05 * 0.5
        ("desert-law", 0.585),  # 0.3 + 0.1 * 0.5 + 0.15 * 0.5 + 0.15 * 0.25 + 0.15 * 0.5833 + 0.1 * 0.1 + 0.05 * 0.5
    ]
    harbour, gulf, desert = ranked
    assert harbour.factors == {
        "market": 1.0,
        "sector": 1.0,
        "language": 1.0,
        "specialty": 1.0,
        "quality": 0.7153,  # mean of acceptance 6/9, completion 4/6, rating ((9 + 8) / 4 - 1) / 4
        "load": 0.8,
        "speed": 0.875,  # 6 h of a 48 h window
    }
    assert harbour.reasons == [
        "offers legal",
        "covers AE and SA",
        "speaks zh-Hans, en",
        "sector C27 experience",
        "specialties: commercial contracts, company formation",
        "2 of 10 slots used",
        "accepted 4 of 5 offers",
        "completed 3 of 4 accepted",
        "rated 4.5/5 (2)",
        "answers in ~6 h",
    ]
    assert gulf.factors == {
        "market": 0.8,
        "sector": 0.7,
        "language": 0.75,
        "specialty": 0.5,
        "quality": 0.5833,
        "load": 1.0,
        "speed": 0.5,
    }
    assert gulf.reasons == [
        "offers legal",
        "covers AE and SA through MIDDLE_EAST",
        "speaks en",
        "speaks zh-Hant, close to zh-Hans",
        "sector C experience",
        "0 of 10 slots used",
        "new partner: no offers yet",
    ]
    assert desert.factors == {
        "market": 1.0,
        "sector": 0.5,
        "language": 0.5,
        "specialty": 0.25,
        "quality": 0.5833,
        "load": 0.1,
        "speed": 0.5,
    }
    assert desert.reasons == [
        "offers legal",
        "covers AE and SA",
        "speaks en",
        "9 of 10 slots used",
        "new partner: no offers yet",
    ]


def test_mixed_named_and_regional_coverage_is_explained() -> None:
    p = partner("mixed-firm", {"AE", "MIDDLE_EAST", "ASEAN"})
    got = only(p, request(["AE", "QA", "SG", "KW"]))
    assert got.factors["market"] == 0.85  # (1 + 0.8 + 0.8 + 0.8) / 4
    assert got.reasons[:3] == ["offers legal", "covers AE", "covers QA and KW through MIDDLE_EAST"]
    assert got.reasons[3] == "covers SG through ASEAN"


# -- hard filters ---------------------------------------------------------------------------------------------------


def test_an_eligible_partner_passes_every_hard_filter() -> None:
    assert eligible(partner("open-firm"), request(), NEW)


@pytest.mark.parametrize(
    ("p", "req", "stats"),
    [
        (partner("sleeping", active=False), request(), NEW),
        (partner("tax-only", categories={TAX: set()}), request(), NEW),
        (partner("ae-only", {"AE"}), request(["AE", "SA"]), NEW),
        (partner("some-asean", {"SG", "MY"}), request(["ASEAN"]), NEW),
        (partner("full-house", capacity=2), request(), PartnerStats(open_referrals=2)),
        (partner("over-full", capacity=2), request(), PartnerStats(open_referrals=5)),
        (partner("excluded", {"AE", "SA"}), request(exclude=frozenset({"excluded"})), NEW),
    ],
    ids=["inactive", "category", "market", "region-needs-all-members", "capacity", "over-capacity", "excluded"],
)
def test_each_hard_filter_excludes(p: Partner, req: Request, stats: PartnerStats) -> None:
    assert not eligible(p, req, stats)
    assert rank([p], req, {p.id: stats}) == []


def test_a_region_covers_its_members_and_a_region_request_needs_all_of_them() -> None:
    assert eligible(partner("regional", {"ASEAN"}), request(["SG", "MY"]), NEW)
    assert eligible(partner("listed", set(REGIONS["ASEAN"])), request(["ASEAN"]), NEW)
    assert not eligible(partner("gulf-only", {"AE", "SA"}), request(["MIDDLE_EAST"]), NEW)


def test_one_free_slot_is_enough() -> None:
    assert eligible(partner("nearly-full", capacity=3), request(), PartnerStats(open_referrals=2))


# -- factors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markets", "asked", "expected"),
    [
        ({"AE", "SA"}, ["AE", "SA"], 1.0),
        ({"MIDDLE_EAST"}, ["AE"], 0.8),
        ({"AE", "MIDDLE_EAST"}, ["AE", "QA"], 0.9),
        ({"MIDDLE_EAST"}, ["MIDDLE_EAST"], 1.0),  # the region listed by name
        (set(REGIONS["ASEAN"]), ["ASEAN"], 1.0),  # every member country listed by name
        ({"ASEAN", "SG"}, ["SG", "MY"], 0.9),
    ],
)
def test_market_factor(markets: set[str], asked: list[str], expected: float) -> None:
    assert factor("market", partner("firm", markets), request(asked)) == expected


def test_region_request_covered_by_listed_countries_is_named() -> None:
    got = only(partner("listed", set(REGIONS["ASEAN"])), request(["ASEAN"]))
    assert got.reasons[1] == "covers ASEAN"


@pytest.mark.parametrize(
    ("sectors", "asked", "expected", "reason"),
    [
        ({"C27"}, None, 0.5, None),  # no enterprise sector
        (set(), "C27", 0.5, None),  # generalist
        ({"C27", "G46"}, "C27", 1.0, "sector C27 experience"),
        ({"C27"}, "c27", 1.0, "sector C27 experience"),  # the request's code is normalised
        ({"C"}, "C27", 0.7, "sector C experience"),  # the division's section
        ({"C"}, "C", 0.7, "sector C experience"),  # the section
        ({"C26"}, "C", 0.7, "sector C experience"),  # a division of the asked section
        ({"C26"}, "C27", 0.0, None),  # a sibling division
        ({"G"}, "C27", 0.0, None),
        ({"G46"}, "C", 0.0, None),
    ],
)
def test_sector_factor(sectors: set[str], asked: str | None, expected: float, reason: str | None) -> None:
    got = only(partner("firm", sectors=sectors), request(sector=asked))
    assert got.factors["sector"] == expected
    sector_reasons = [r for r in got.reasons if r.startswith("sector")]
    assert sector_reasons == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("spoken", "asked", "expected"),
    [
        ({"en"}, [], 1.0),  # nothing asked
        (set(), ["en"], 0.0),
        ({"zh-Hans", "en"}, ["zh-Hans", "en"], 1.0),
        ({"zh-Hant"}, ["zh-Hans"], 0.5),  # same primary subtag only
        ({"zh"}, ["zh-Hans"], 0.5),
        ({"zh-Hans"}, ["zh"], 0.5),
        ({"en"}, ["zh-Hans", "en"], 0.5),
        ({"en"}, ["en", "EN", "en"], 1.0),  # duplicates dropped, case-insensitively
        ({"zh-Hans"}, ["zh-hans"], 1.0),
        ({"ar"}, ["zh-Hans", "en"], 0.0),
    ],
)
def test_language_factor(spoken: set[str], asked: list[str], expected: float) -> None:
    assert factor("language", partner("firm", languages=spoken), request(languages=asked)) == expected


def test_need_languages_keep_their_order_in_the_reason() -> None:
    got = only(partner("firm", languages={"en", "zh-Hans", "ar"}), request(languages=["zh-Hans", "en", "zh-Hans"]))
    assert "speaks zh-Hans, en" in got.reasons


@pytest.mark.parametrize(
    ("specialties", "description", "expected"),
    [
        (set(), "company formation", 0.5),  # none listed
        ({"company formation"}, "", 0.5),  # empty description
        ({"company formation"}, "  ...  ", 0.5),  # a description without words
        ({"company formation"}, "Company Formation in Dubai", 0.75),
        ({"company formation"}, "formation of a company", 0.75),  # all the words, in any order
        ({"company formation"}, "company registration", 0.25),  # not all the words
        ({"company formation", "trademarks"}, "company formation and trademarks", 1.0),
        ({"company formation", "trademarks", "visas"}, "company formation, trademarks, visas", 1.0),  # capped
        ({"e-commerce"}, "cross-border E-Commerce", 0.75),
        ({"arbitration"}, "company formation", 0.25),
    ],
)
def test_specialty_factor(specialties: set[str], description: str, expected: float) -> None:
    p = partner("firm", categories={LEGAL: specialties})
    assert factor("specialty", p, request(description=description)) == expected


def test_specialties_of_another_category_do_not_count() -> None:
    p = partner("firm", categories={LEGAL: set(), TAX: {"transfer pricing"}})
    assert factor("specialty", p, request(description="transfer pricing")) == 0.5


def test_specialties_are_stored_lower_case_with_single_spaces() -> None:
    p = partner("firm", categories={LEGAL: {"  Company   Formation "}})
    assert p.categories == {LEGAL: frozenset({"company formation"})}
    got = only(p, request(description="company formation"))
    assert "specialty: company formation" in got.reasons


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (NEW, 0.5833),  # (0.5 + 0.5 + 0.75) / 3: priors only
        (PartnerStats(offers=10, accepted=10, completed=10, rating_sum=50, rating_count=10), 0.9107),  # 12/14, 11/12
        (PartnerStats(offers=10, declined=10), 0.4643),  # acceptance 2/14, completion 1/2, rating 0.75
        (PartnerStats(offers=4, accepted=4, completed=0, rating_sum=4, rating_count=4), 0.3889),  # 6/8, 1/6, 0.25
        (PartnerStats(offers=1, accepted=50, completed=99, rating_sum=500, rating_count=1), 1.0),  # clamped
    ],
)
def test_quality_factor(stats: PartnerStats, expected: float) -> None:
    assert factor("quality", partner("firm"), request(), stats) == expected


def test_a_new_partner_is_not_starved_by_a_poor_record() -> None:
    poor = PartnerStats(offers=10, declined=8, accepted=2, completed=1, rating_sum=4, rating_count=2)
    ranked = rank([partner("newcomer"), partner("old-hand")], request(), {"old-hand": poor}, fairness_margin=0.0)
    assert [c.partner.id for c in ranked] == ["newcomer", "old-hand"]


@pytest.mark.parametrize(("open_referrals", "expected"), [(0, 1.0), (1, 0.75), (3, 0.25)])
def test_load_factor(open_referrals: int, expected: float) -> None:
    got = only(partner("firm", capacity=4), request(), PartnerStats(open_referrals=open_referrals))
    assert got.factors["load"] == expected
    assert f"{open_referrals} of 4 slots used" in got.reasons


@pytest.mark.parametrize(
    ("hours", "responses", "expected", "reason"),
    [
        (0.0, 0, 0.5, None),
        (12.0, 2, 0.75, "answers in ~6 h"),  # 6 h of a 24 h window
        (1.0, 4, 0.9896, "answers in < 1 h"),
        (24.0, 1, 0.0, "answers in ~24 h"),
        (100.0, 2, 0.0, "answers in ~50 h"),  # slower than the window
    ],
)
def test_speed_factor(hours: float, responses: int, expected: float, reason: str | None) -> None:
    got = only(partner("firm", window=24), request(), PartnerStats(response_hours_sum=hours, responses=responses))
    assert got.factors["speed"] == expected
    assert [r for r in got.reasons if r.startswith("answers")] == ([reason] if reason else [])


def test_the_score_is_the_weighted_mean_of_the_factors() -> None:
    p = partner("firm", {"MIDDLE_EAST"})
    market_only = Weights(market=2, sector=0, language=0, specialty=0, quality=0, load=0, speed=0)
    assert only(p, request(["AE"]), weights=market_only).score == 0.8
    half = Weights(market=1, sector=0, language=1, specialty=0, quality=0, load=0, speed=0)
    assert only(p, request(["AE"], ["en"]), weights=half).score == 0.4  # (0.8 + 0.0) / 2


@pytest.mark.parametrize(
    "bad",
    [
        {"market": -0.1},
        {"speed": float("nan")},
        {"load": float("inf")},
        dict.fromkeys(FACTOR_NAMES, 0.0),
    ],
)
def test_bad_weights_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        Weights(**bad)


@pytest.mark.parametrize("margin", [-0.01, float("nan")])
def test_a_bad_fairness_margin_is_refused(margin: float) -> None:
    with pytest.raises(ValueError, match="fairness_margin"):
        rank([partner("firm")], request(), {}, fairness_margin=margin)


# -- fairness ---------------------------------------------------------------------------------------------------------


def test_equal_scores_rotate_never_offered_first_then_oldest_offer() -> None:
    directory = [partner(pid) for pid in ("alpha", "bravo", "charlie", "delta", "echo")]
    stats = {
        "alpha": PartnerStats(last_offered_at=NOW),
        "bravo": PartnerStats(last_offered_at=NOW - timedelta(days=30)),
        "charlie": PartnerStats(last_offered_at=NOW - timedelta(days=2)),
        # delta and echo were never offered: they come first, by id
    }
    ranked = rank(directory, request(), stats)
    assert len({c.score for c in ranked}) == 1
    assert [c.partner.id for c in ranked] == ["delta", "echo", "bravo", "charlie", "alpha"]


def test_inside_the_margin_the_least_recently_offered_goes_first() -> None:
    busy = PartnerStats(open_referrals=3, last_offered_at=NOW)  # load 0.7: 0.03 below the best
    ranked = rank([partner("busy-best"), partner("second")], request(), {"busy-best": busy})
    assert [(c.partner.id, c.score) for c in ranked] == [("second", 0.7875), ("busy-best", 0.7575)]
    ranked = rank([partner("busy-best"), partner("second")], request(), {"second": busy})
    assert [c.partner.id for c in ranked] == ["busy-best", "second"]


def test_outside_the_margin_the_score_wins() -> None:
    directory = [partner("exact-firm", {"AE", "SA"}), partner("regional-firm", {"MIDDLE_EAST"})]
    stats = {"exact-firm": PartnerStats(last_offered_at=NOW)}  # 0.06 apart: market 1.0 vs 0.8
    assert [c.partner.id for c in rank(directory, request(), stats)] == ["exact-firm", "regional-firm"]
    wide = rank(directory, request(), stats, fairness_margin=0.1)
    assert [c.partner.id for c in wide] == ["regional-firm", "exact-firm"]


def test_a_zero_margin_only_rotates_exact_ties() -> None:
    directory = [partner("alpha"), partner("bravo"), partner("charlie", {"MIDDLE_EAST"})]
    stats = {"alpha": PartnerStats(last_offered_at=NOW), "bravo": PartnerStats(last_offered_at=NOW - timedelta(1))}
    ranked = rank(directory, request(), stats, fairness_margin=0.0)
    assert [c.partner.id for c in ranked] == ["bravo", "alpha", "charlie"]


def test_below_the_band_score_then_id() -> None:
    directory = [
        partner("top"),
        partner("zulu", {"MIDDLE_EAST"}),
        partner("yankee", {"MIDDLE_EAST"}),
        partner("xray", {"MIDDLE_EAST"}, capacity=2),
    ]
    stats = {"xray": PartnerStats(open_referrals=1), "yankee": PartnerStats(last_offered_at=NOW)}
    ranked = rank(directory, request(), stats)
    assert [c.partner.id for c in ranked] == ["top", "yankee", "zulu", "xray"]


def test_naive_offer_times_are_read_as_utc() -> None:
    stats = {
        "aware": PartnerStats(last_offered_at=NOW),
        "naive": PartnerStats(last_offered_at=(NOW - timedelta(hours=1)).replace(tzinfo=None)),
    }
    ranked = rank([partner("aware"), partner("naive")], request(), stats)
    assert [c.partner.id for c in ranked] == ["naive", "aware"]


def test_a_partner_given_twice_is_ranked_once_and_conflicting_ids_are_refused() -> None:
    p = partner("twice")
    assert [c.partner.id for c in rank([p, p], request(), {})] == ["twice"]
    with pytest.raises(ValueError, match="twice"):
        rank([p, partner("twice", {"AE", "SA", "QA"})], request(), {})


# -- partners and events --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "X"},
        {"categories": {}},
        {"markets": frozenset()},
        {"markets": frozenset({"XX"})},
        {"sectors": frozenset({"C05"})},
        {"languages": frozenset({"not a tag"})},
        {"capacity": 0},
        {"response_window_hours": 0},
        {"unexpected": 1},
    ],
)
def test_invalid_partners_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"id": "firm", "name": "Firm", "categories": {LEGAL: frozenset()}, "markets": {"AE"}}
    with pytest.raises(ValidationError):
        Partner.model_validate({**fields, **bad})


def test_partner_from_event() -> None:
    event = PartnerUpserted(
        partner_id="harbour-legal",
        name="Harbour Legal",
        categories=[
            PartnerCategoryDetails(category=LEGAL, specialties=["Company Formation"]),
            PartnerCategoryDetails(category=TAX),
            PartnerCategoryDetails(category=LEGAL, specialties=["trademarks"]),
        ],
        markets=["AE", "MIDDLE_EAST"],
        sectors=["c27", "G"],
        languages=["zh-Hans", "en"],
        capacity=25,
        response_window_hours=24,
        offer_strategy=OfferStrategy.SEQUENTIAL,
        parallel_offers=1,
        active=False,
        version=7,
        updated_at=NOW,
    )
    assert partner_from_event(event) == Partner(
        id="harbour-legal",
        name="Harbour Legal",
        categories={LEGAL: frozenset({"company formation", "trademarks"}), TAX: frozenset()},
        markets=frozenset({"AE", "MIDDLE_EAST"}),
        sectors=frozenset({"C27", "G"}),
        languages=frozenset({"zh-Hans", "en"}),
        capacity=25,
        response_window_hours=24,
        active=False,
    )


def test_a_copy_with_changes_is_matched_on_its_new_values() -> None:
    p = partner("firm", {"AE"})
    assert rank([p], request(["AE"]), {})  # the derived coverage is now cached
    moved = p.model_copy(update={"markets": frozenset({"GB"})})
    assert rank([moved], request(["AE"]), {}) == []
    assert rank([moved], request(["GB"]), {})


# -- the directory index --------------------------------------------------------------------------------------------


def test_index_candidates_cover_every_country_of_every_market() -> None:
    index = DirectoryIndex()
    for p in [
        partner("gulf-wide", {"MIDDLE_EAST"}),
        partner("two-gulf", {"AE", "SA"}),
        partner("uae-only", {"AE"}),
        partner("tax-gulf", {"MIDDLE_EAST"}, {TAX: set()}),
        partner("sleeping", {"MIDDLE_EAST"}, active=False),
    ]:
        assert index.upsert(p, 1)
    assert [p.id for p in index.candidates(LEGAL, ["AE"])] == ["gulf-wide", "two-gulf", "uae-only"]
    assert [p.id for p in index.candidates(LEGAL, ["AE", "SA"])] == ["gulf-wide", "two-gulf"]
    assert [p.id for p in index.candidates(LEGAL, ["MIDDLE_EAST"])] == ["gulf-wide"]
    assert [p.id for p in index.candidates(TAX, ["QA"])] == ["tax-gulf"]
    assert index.candidates(LEGAL, ["GB"]) == []
    assert index.candidates(ServiceCategory.LOGISTICS, ["AE"]) == []
    assert [p.id for p in index.candidates(LEGAL, [])] == ["gulf-wide", "two-gulf", "uae-only"]
    assert len(index) == 5
    assert [p.id for p in index.partners()] == ["gulf-wide", "sleeping", "tax-gulf", "two-gulf", "uae-only"]
    sleeping = index.get("sleeping")
    assert sleeping is not None
    assert not sleeping.active
    assert index.get("nobody") is None


def test_an_equal_or_older_version_is_ignored() -> None:
    index = DirectoryIndex()
    assert index.upsert(partner("firm", {"AE"}), 2)
    assert not index.upsert(partner("firm", {"GB"}), 1)
    assert not index.upsert(partner("firm", {"GB"}), 2)
    assert [p.id for p in index.candidates(LEGAL, ["AE"])] == ["firm"]
    assert index.candidates(LEGAL, ["GB"]) == []
    assert index.upsert(partner("firm", {"GB"}), 3)
    assert index.candidates(LEGAL, ["AE"]) == []
    assert [p.id for p in index.candidates(LEGAL, ["GB"])] == ["firm"]
    assert len(index) == 1


def test_deactivation_and_reactivation() -> None:
    index = DirectoryIndex()
    index.upsert(partner("firm", {"AE"}), 1)
    index.upsert(partner("firm", {"AE"}, active=False), 2)
    assert index.candidates(LEGAL, ["AE"]) == []
    assert index.candidates(LEGAL, []) == []
    index.upsert(partner("firm", {"AE"}, {TAX: set()}), 3)
    assert index.candidates(LEGAL, ["AE"]) == []
    assert [p.id for p in index.candidates(TAX, ["AE"])] == ["firm"]


# -- properties -----------------------------------------------------------------------------------------------------

CODES = ["AE", "SA", "QA", "GB", "SG", "MIDDLE_EAST", "ASEAN", "EUROPE"]
SECTORS = ["C", "C26", "C27", "G", "G46", "K64", "M"]
LANGUAGES = ["en", "zh-Hans", "zh-Hant", "zh", "ar", "pt", "ms"]
WORDS = ["company", "formation", "tax", "audit", "visa", "trademarks", "contracts", "free", "zones"]
SPECIALTIES = ["company formation", "audit", "trademarks", "free zones", "visa", "tax audit"]
CATEGORIES = [LEGAL, TAX]  # few, so that most generated requests have candidates to rank
TIMES = [None, NOW, NOW - timedelta(days=1), NOW - timedelta(days=9), (NOW - timedelta(hours=5)).replace(tzinfo=None)]

ID_POOL = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def subset(items: list[str], min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[frozenset[str]]:
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=max_size, unique=True).map(frozenset)


# Built once: hypothesis validates and caches each strategy object, so drawing from shared ones keeps tests fast.
_offers_st = st.dictionaries(st.sampled_from(CATEGORIES), subset(SPECIALTIES), min_size=1, max_size=2)
_profile_st = st.tuples(
    _offers_st,
    subset(CODES, min_size=1, max_size=5),
    subset(SECTORS, max_size=2),
    subset(LANGUAGES),
    st.integers(1, 6),
    st.sampled_from([12, 48]),
    st.sampled_from([True, True, True, False]),
)


def partners_st(pid: str) -> st.SearchStrategy[Partner]:
    return _profile_st.map(
        lambda f: Partner(
            id=pid,
            name="Firm",
            categories=f[0],
            markets=f[1],
            sectors=f[2],
            languages=f[3],
            capacity=f[4],
            response_window_hours=f[5],
            active=f[6],
        )
    )


_partner_st = {pid: partners_st(pid) for pid in ID_POOL}


@st.composite
def directories_st(draw: st.DrawFn) -> list[Partner]:
    ids = draw(st.lists(st.sampled_from(ID_POOL), max_size=len(ID_POOL), unique=True))
    return [draw(_partner_st[pid]) for pid in ids]


stats_st = st.builds(
    PartnerStats,
    open_referrals=st.integers(0, 4),
    offers=st.integers(0, 20),
    accepted=st.integers(0, 20),
    declined=st.integers(0, 20),
    expired=st.integers(0, 5),
    completed=st.integers(0, 20),
    rating_sum=st.integers(0, 100),
    rating_count=st.integers(0, 20),
    response_hours_sum=st.floats(0, 500),
    responses=st.integers(0, 10),
    last_offered_at=st.sampled_from(TIMES),
)


@st.composite
def requests_st(draw: st.DrawFn, ids: list[str] | None = None) -> Request:
    return Request(
        category=draw(st.sampled_from(CATEGORIES)),
        markets=draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=2)),
        languages=draw(st.lists(st.sampled_from(LANGUAGES), max_size=3)),
        sector=draw(st.none() | st.sampled_from(SECTORS)),
        description=" ".join(draw(st.lists(st.sampled_from(WORDS), max_size=6))),
        exclude=draw(subset(ids, max_size=2)) if ids else frozenset(),
    )


@st.composite
def scenarios_st(draw: st.DrawFn) -> tuple[list[Partner], Request, dict[str, PartnerStats]]:
    directory = draw(directories_st())
    ids = [p.id for p in directory]
    stats = {pid: draw(stats_st) for pid in ids if draw(st.booleans())}
    return directory, draw(requests_st(ids)), stats


Scenario = tuple[list[Partner], Request, dict[str, PartnerStats]]


def ids_of(candidates: list[Candidate]) -> list[str]:
    return [c.partner.id for c in candidates]


def ids_of_partners(partners: list[Partner]) -> list[str]:
    return [p.id for p in partners]


@given(scenarios_st(), st.floats(0, 0.2))
def test_ranked_candidates_are_exactly_the_eligible_partners_in_range(scenario: Scenario, margin: float) -> None:
    directory, req, stats = scenario
    ranked = rank(directory, req, stats, fairness_margin=margin)
    expected = {p.id for p in directory if eligible(p, req, stats.get(p.id, NEW))}
    assert sorted(ids_of(ranked)) == sorted(expected)
    for c in ranked:
        assert eligible(c.partner, req, stats.get(c.partner.id, NEW))
        assert c.partner.active
        assert req.category in c.partner.categories
        assert c.partner.id not in req.exclude
        assert stats.get(c.partner.id, NEW).open_referrals < c.partner.capacity
        assert 0.0 <= c.score <= 1.0
        assert list(c.factors) == FACTOR_NAMES
        assert all(0.0 <= v <= 1.0 for v in c.factors.values())
        assert c.reasons[0] == f"offers {req.category.value}"
    if ranked:
        best = max(c.score for c in ranked)
        assert ranked[0].score >= best - margin - 1e-9  # the first is always in the top band
        below = [c for c in ranked if c.score < best - margin - 1e-9]
        assert below == sorted(below, key=lambda c: (-c.score, c.partner.id))
        assert ranked[len(ranked) - len(below) :] == below


@given(scenarios_st(), st.randoms(use_true_random=False))
def test_rank_is_deterministic_and_ignores_input_order(scenario: Scenario, rnd: random.Random) -> None:
    directory, req, stats = scenario
    first = rank(directory, req, stats)
    shuffled = list(directory)
    rnd.shuffle(shuffled)
    assert rank(shuffled, req, stats) == first
    assert rank(iter(directory), req, dict(reversed(stats.items()))) == first


@given(scenarios_st(), st.sampled_from(list(ServiceCategory)), partners_st("zz-unrelated"), st.booleans())
def test_an_unrelated_partner_never_changes_the_ranking(
    scenario: Scenario, other: ServiceCategory, newcomer: Partner, elsewhere: bool
) -> None:
    directory, req, stats = scenario
    if elsewhere:  # offers the category, but not where it is needed
        newcomer = newcomer.model_copy(update={"markets": frozenset({"US", "JP"})})
        newcomer = newcomer.model_copy(update={"categories": {req.category: frozenset(), **newcomer.categories}})
    else:  # covers everything, but offers another category
        others = [c for c in ServiceCategory if c != req.category]
        category = other if other != req.category else others[0]
        newcomer = newcomer.model_copy(update={"categories": {category: frozenset()}, "markets": frozenset(REGIONS)})
    with_newcomer = rank([*directory, newcomer], req, {**stats, newcomer.id: PartnerStats()})
    assert with_newcomer == rank(directory, req, stats)


@given(directories_st(), requests_st())
def test_index_candidates_equal_the_brute_force_scan(directory: list[Partner], req: Request) -> None:
    index = DirectoryIndex()
    for p in directory:
        index.upsert(p, 1)
    assert ids_of_partners(index.candidates(req.category, req.markets)) == ids_of_partners(
        brute_force_candidates(directory, req)
    )
    assert index.candidates(req.category, req.markets) == brute_force_candidates(reversed(directory), req)


@st.composite
def upserts_st(draw: st.DrawFn) -> tuple[Partner, int]:
    pid = draw(st.sampled_from(ID_POOL[:4]))
    return draw(_partner_st[pid]), draw(st.integers(1, 6))


@settings(max_examples=60)
@given(st.lists(upserts_st(), max_size=25), st.lists(requests_st(), min_size=1, max_size=4))
def test_index_follows_random_upserts_like_a_brute_force_scan(
    upserts: list[tuple[Partner, int]], reqs: list[Request]
) -> None:
    index = DirectoryIndex()
    held: dict[str, tuple[int, Partner]] = {}
    for p, version in upserts:
        pid = p.id
        newer = pid not in held or held[pid][0] < version
        assert index.upsert(p, version) is newer
        if newer:
            held[pid] = (version, p)
        current = [p for _, p in held.values()]
        assert len(index) == len(held)
        assert index.partners() == sorted(current, key=lambda p: p.id)
        for req in reqs:
            assert index.candidates(req.category, req.markets) == brute_force_candidates(current, req)
