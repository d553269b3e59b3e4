from hypothesis import given
from hypothesis import strategies as st

from goglobal_shared.enums import ServiceCategory
from goglobal_shared.markets import REGIONS, covers, expand
from matching.engine import Partner, eligible, pick_best

LEGAL = ServiceCategory.LEGAL


def partner(
    pid: str, markets: set[str], categories: set[ServiceCategory] | None = None, active: bool = True
) -> Partner:
    return Partner(
        id=pid, name=pid.title(), categories=frozenset(categories or {LEGAL}), markets=frozenset(markets), active=active
    )


def test_exact_country_coverage_beats_region_coverage() -> None:
    best = pick_best([partner("regional", {"MIDDLE_EAST"}), partner("exact", {"AE", "SA"})], LEGAL, ["AE", "SA"])
    assert best is not None
    assert best.partner.id == "exact"
    assert best.score == 1.0
    assert best.reasons == ["offers legal", "covers AE and SA"]


def test_region_coverage_is_explained() -> None:
    best = pick_best([partner("regional", {"MIDDLE_EAST"})], LEGAL, ["AE"])
    assert best is not None
    assert best.score == 0.86  # market 0.8 (region only) x 0.7 + no language asked x 0.3
    assert best.reasons == ["offers legal", "covers AE through MIDDLE_EAST"]


def test_inactive_wrong_category_and_partial_coverage_are_excluded() -> None:
    partners = [
        partner("inactive", {"AE", "SA"}, active=False),
        partner("accountant", {"AE", "SA"}, {ServiceCategory.ACCOUNTING}),
        partner("half", {"AE"}),
    ]
    assert pick_best(partners, LEGAL, ["AE", "SA"]) is None


def test_ties_go_to_the_lowest_id_whatever_the_order() -> None:
    a, b = partner("alpha", {"AE"}), partner("beta", {"AE"})
    assert pick_best([b, a], LEGAL, ["AE"]).partner.id == "alpha"  # type: ignore[union-attr]
    assert pick_best([a, b], LEGAL, ["AE"]).partner.id == "alpha"  # type: ignore[union-attr]


def test_region_request_needs_every_member_country() -> None:
    assert covers({"ASEAN"}, "SG")
    assert covers(set(REGIONS["ASEAN"]), "ASEAN")
    assert not covers({"SG", "MY"}, "ASEAN")
    assert expand("GB") == {"GB"}


codes = st.sampled_from(["AE", "SA", "GB", "SG", "BR", "MIDDLE_EAST", "ASEAN", "EUROPE", "SOUTH_AMERICA"])
partners_st = st.lists(
    st.builds(
        partner,
        pid=st.from_regex(r"[a-z]{3,8}", fullmatch=True),
        markets=st.sets(codes, min_size=1, max_size=4),
        categories=st.sets(st.sampled_from(list(ServiceCategory)), min_size=1, max_size=3),
        active=st.booleans(),
    ),
    max_size=12,
)


@given(partners_st, st.sampled_from(list(ServiceCategory)), st.lists(codes, min_size=1, max_size=3, unique=True))
def test_the_pick_is_always_eligible_and_scored_in_range(
    partners: list[Partner], category: ServiceCategory, markets: list[str]
) -> None:
    best = pick_best(partners, category, markets)
    if best is None:
        assert not any(eligible(p, category, markets) for p in partners)
    else:
        assert eligible(best.partner, category, markets)
        assert 0.0 <= best.score <= 1.0


@given(partners_st, st.sampled_from(list(ServiceCategory)), st.lists(codes, min_size=1, max_size=3, unique=True))
def test_an_ineligible_newcomer_never_changes_the_pick(
    partners: list[Partner], category: ServiceCategory, markets: list[str]
) -> None:
    others = [c for c in ServiceCategory if c != category]
    newcomer = partner("zzz-newcomer", {"AE"}, {others[0]})
    assert pick_best([*partners, newcomer], category, markets) == pick_best(partners, category, markets)
