"""The offer plan of one referral (`matching.plan.Plan`) and the ranking it offers from (`matching.engine.rank`).

Pure: plans are built and driven in memory, exactly as the handlers drive them (`first_ranking` then `offer` on
submission; `declined`/`expire_due` then `offer` again; `assign`, `accepted`, `ended`, `completed`).
"""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    Candidate as CandidateEvent,
)
from goglobal_contract.events import (
    OfferWithdrawalReason,
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralUnmatched,
)
from goglobal_contract.markets import REGIONS
from matching.engine import FACTORS, Candidate, Partner, PartnerStats, Request, Weights, eligible, rank
from matching.plan import Offer, Plan, PlanStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RID = "0000018f2a0b3c4d5e6f708192a3b4c5"
SOURCE = "/goglobal/matching"
LEGAL = ServiceCategory.LEGAL
NEW = PartnerStats()


def partner(
    pid: str,
    markets: frozenset[str] = frozenset({"AE", "SA"}),
    categories: frozenset[ServiceCategory] = frozenset({LEGAL}),
    languages: frozenset[str] = frozenset(),
    window: int = 48,
    capacity: int = 10,
    active: bool = True,
    name: str | None = None,
) -> Partner:
    return Partner(
        id=pid,
        name=name or pid.replace("-", " ").title(),
        categories={c: frozenset() for c in categories},
        markets=markets,
        languages=languages,
        response_window_hours=window,
        capacity=capacity,
        active=active,
    )


def ranking(*partners: Partner) -> list[Candidate]:
    return rank(list(partners), Request(LEGAL, ["AE"]), {})


def new_plan(strategy: OfferStrategy = OfferStrategy.SEQUENTIAL, width: int = 1) -> Plan:
    return Plan(referral_id=RID, request={"category": "legal", "markets": ["AE"]}, strategy=strategy, width=width)


def submitted(plan: Plan, ranked: list[Candidate], now: datetime = NOW) -> list[Envelope]:
    """What matching's `match` use case does: announce the ranking, then fill the open slots. Returns the events
    queued."""
    plan.first_ranking(ranked, now)
    plan.offer(ranked, now, HOUR)
    return plan.pending


def drain(plan: Plan) -> list[Envelope]:
    events, plan.pending = plan.pending, []
    return events


def offered(envelope: Envelope) -> ReferralOffered:
    assert (envelope.type, envelope.source, envelope.subject) == (ReferralOffered.event_type, SOURCE, RID)
    assert isinstance(envelope.data, ReferralOffered)
    return envelope.data


def unmatched(envelope: Envelope) -> ReferralUnmatched:
    assert (envelope.type, envelope.source, envelope.subject) == (ReferralUnmatched.event_type, SOURCE, RID)
    assert isinstance(envelope.data, ReferralUnmatched)
    return envelope.data


def withdrawn(envelope: Envelope) -> ReferralOfferWithdrawn:
    assert (envelope.type, envelope.source, envelope.subject) == (ReferralOfferWithdrawn.event_type, SOURCE, RID)
    assert isinstance(envelope.data, ReferralOfferWithdrawn)
    return envelope.data


def only(events: list[Envelope]) -> Envelope:
    assert len(events) == 1, [e.type for e in events]
    return events[0]


# -- the first plan --------------------------------------------------------------------------------------


def test_no_candidates_means_one_unmatched_event_and_nothing_else() -> None:
    plan = new_plan()
    event = unmatched(only(submitted(plan, [])))
    assert event == ReferralUnmatched(
        referral_id=RID, reason="no active partner with free capacity covers this need", unmatched_at=NOW
    )
    assert (plan.status, plan.candidates, plan.offered, plan.open_offers) == (PlanStatus.UNMATCHED, [], [], [])
    assert plan.next_deadline is None
    assert not plan.wants_offers


def test_candidates_are_announced_best_first_and_the_best_is_offered() -> None:
    ranked = ranking(
        partner("regional-firm", frozenset({"MIDDLE_EAST"}), window=24),
        partner("exact-firm", window=72),
        partner("another-exact", window=12),
    )
    assert [c.partner.id for c in ranked] == ["another-exact", "exact-firm", "regional-firm"]

    plan = new_plan()
    matched_envelope, offer_envelope = submitted(plan, ranked)
    assert (matched_envelope.type, matched_envelope.source, matched_envelope.subject) == (
        ReferralMatched.event_type,
        SOURCE,
        RID,
    )
    assert matched_envelope.data == ReferralMatched(
        referral_id=RID,
        candidates=[
            CandidateEvent(partner_id=c.partner.id, partner_name=c.partner.name, score=c.score, reasons=c.reasons)
            for c in ranked
        ],
        matched_at=NOW,
    )
    assert offered(offer_envelope) == ReferralOffered(
        referral_id=RID,
        partner_id="another-exact",
        partner_name="Another Exact",
        offered_at=NOW,
        respond_by=NOW + timedelta(hours=12),
        round=1,
    )
    assert plan.status is PlanStatus.OFFERING
    assert plan.offered == ["another-exact"]
    assert plan.open_offers == [Offer("another-exact", "Another Exact", NOW, NOW + timedelta(hours=12), 1)]
    assert plan.offered_at == {"another-exact": NOW}
    assert plan.next_deadline == NOW + timedelta(hours=12)
    assert [c["partner_id"] for c in plan.candidates] == [c.partner.id for c in ranked]
    assert not plan.wants_offers


def test_the_respond_by_follows_the_configured_length_of_an_hour() -> None:
    plan = new_plan()
    second = timedelta(seconds=1)  # tests compress an hour to a second
    plan.offer(ranking(partner("a-firm", window=36)), NOW, second)
    assert offered(only(plan.pending)).respond_by == NOW + timedelta(seconds=36)


def test_parallel_offers_go_to_the_k_best_at_once() -> None:
    ranked = ranking(*(partner(f"{c}-firm", window=w) for c, w in zip("abcd", (5, 3, 9, 1), strict=True)))
    plan = new_plan(OfferStrategy.PARALLEL, width=3)
    events = submitted(plan, ranked)
    offers = [offered(e) for e in events[1:]]
    assert [(o.partner_id, o.round, o.respond_by) for o in offers] == [
        ("a-firm", 1, NOW + timedelta(hours=5)),
        ("b-firm", 2, NOW + timedelta(hours=3)),
        ("c-firm", 3, NOW + timedelta(hours=9)),
    ]
    assert plan.next_deadline == NOW + timedelta(hours=3)

    # One declines: its slot goes to the next candidate, whoever else is still open.
    drain(plan)
    assert plan.declined("b-firm")
    plan.offer(ranked, NOW + HOUR, HOUR)
    assert offered(only(drain(plan))).partner_id == "d-firm"
    assert [o.partner_id for o in plan.open_offers] == ["a-firm", "c-firm", "d-firm"]


# -- walking the candidates ------------------------------------------------------------------------------


def test_declines_walk_the_candidates_in_order_then_the_referral_is_unmatched() -> None:
    ranked = ranking(partner("b-firm", window=24), partner("a-firm", window=6), partner("c-firm"))
    plan = new_plan()
    submitted(plan, ranked)
    drain(plan)
    later = NOW + timedelta(hours=5)

    offers: list[ReferralOffered] = []
    for _ in ranked:
        assert plan.declined(plan.open_offers[0].partner_id)
        plan.offer(ranked, later, HOUR)  # the full ranking again: the plan skips whoever it offered before
        events = drain(plan)
        if plan.status is PlanStatus.UNMATCHED:
            gave_up = unmatched(only(events))
            break
        offers.append(offered(only(events)))

    assert [(o.partner_id, o.round, o.respond_by, o.offered_at) for o in offers] == [
        ("b-firm", 2, later + timedelta(hours=24), later),
        ("c-firm", 3, later + timedelta(hours=48), later),
    ]
    assert gave_up == ReferralUnmatched(
        referral_id=RID, reason="no partner left to offer after 3 offer(s)", unmatched_at=later
    )
    assert plan.offered == ["a-firm", "b-firm", "c-firm"]
    assert plan.open_offers == []
    # Unmatched is final for the plan: nothing more is offered or announced.
    plan.offer(ranked, later, HOUR)
    assert plan.pending == []


def test_deadlines_expire_offers_at_respond_by_and_not_before() -> None:
    ranked = ranking(partner("a-firm", window=2), partner("b-firm", window=4))
    plan = new_plan()
    submitted(plan, ranked)
    drain(plan)
    deadline = NOW + timedelta(hours=2)

    assert plan.expire_due(deadline - timedelta(microseconds=1)) == []
    assert plan.pending == []
    assert plan.expire_due(deadline) == ["a-firm"]
    assert only(plan.pending).data == ReferralExpired(
        referral_id=RID, partner_id="a-firm", offered_at=NOW, expired_at=deadline
    )
    assert plan.open_offers == []
    assert plan.expire_due(deadline) == []  # fires once
    drain(plan)
    plan.offer(ranked, deadline, HOUR)
    assert offered(only(drain(plan))).respond_by == deadline + timedelta(hours=4)


def test_an_answer_for_an_offer_that_is_not_open_changes_nothing() -> None:
    plan = new_plan()
    submitted(plan, ranking(partner("a-firm"), partner("b-firm")))
    assert not plan.declined("b-firm")  # never offered
    assert plan.declined("a-firm")
    assert not plan.declined("a-firm")  # a redelivered decline


def test_the_first_acceptance_wins_and_the_other_open_offers_are_withdrawn() -> None:
    ranked = ranking(partner("a-firm"), partner("b-firm"), partner("c-firm"))
    plan = new_plan(OfferStrategy.PARALLEL, width=3)
    submitted(plan, ranked)
    drain(plan)
    assert plan.accepted("b-firm", NOW)
    assert (plan.status, plan.accepted_by, plan.open_offers) == (PlanStatus.ACCEPTED, "b-firm", [])
    assert [withdrawn(e) for e in drain(plan)] == [
        ReferralOfferWithdrawn(
            referral_id=RID, partner_id=p, reason=OfferWithdrawalReason.ACCEPTED_ELSEWHERE, withdrawn_at=NOW
        )
        for p in ("a-firm", "c-firm")
    ]
    assert not plan.accepted("c-firm", NOW)
    assert not plan.wants_offers
    plan.offer(ranked, NOW, HOUR)
    assert plan.expire_due(NOW + timedelta(days=30)) == []
    assert plan.pending == []


@pytest.mark.parametrize(
    "reason", [OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, OfferWithdrawalReason.CLOSED_BY_OPERATOR]
)
def test_an_ended_referral_withdraws_every_open_offer_once(reason: OfferWithdrawalReason) -> None:
    plan = new_plan(OfferStrategy.PARALLEL, width=2)
    submitted(plan, ranking(partner("a-firm"), partner("b-firm"), partner("c-firm")))
    drain(plan)
    assert plan.ended(reason, NOW)
    assert [(w.partner_id, w.reason) for w in map(withdrawn, drain(plan))] == [("a-firm", reason), ("b-firm", reason)]
    assert (plan.status, plan.open_offers) == (PlanStatus.ENDED, [])
    assert not plan.ended(reason, NOW)
    assert plan.pending == []
    assert not plan.accepted("a-firm", NOW)


def test_a_completed_plan_stays_completed() -> None:
    plan = new_plan()
    submitted(plan, ranking(partner("a-firm")))
    assert plan.accepted("a-firm", NOW)
    assert plan.completed()
    assert not plan.completed()
    assert not plan.ended(OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, NOW)
    assert plan.status is PlanStatus.COMPLETED


def test_an_operator_can_assign_an_unmatched_referral_to_any_partner() -> None:
    plan = new_plan()
    submitted(plan, [])
    drain(plan)
    chosen = partner("picked-firm", window=6)
    assert plan.assign(chosen, NOW, HOUR)
    assert offered(only(drain(plan))) == ReferralOffered(
        referral_id=RID,
        partner_id="picked-firm",
        partner_name="Picked Firm",
        offered_at=NOW,
        respond_by=NOW + timedelta(hours=6),
        round=1,
    )
    assert plan.status is PlanStatus.OFFERING
    assert not plan.assign(chosen, NOW, HOUR)  # only while unmatched
    # Declined: nobody else to offer.
    assert plan.declined("picked-firm")
    plan.offer([], NOW, HOUR)
    assert unmatched(only(drain(plan))).reason == "no partner left to offer after 1 offer(s)"


# -- the plan, driven at random --------------------------------------------------------------------------

ID_POOL = [f"{a}{b}-{n}" for a in "abk" for b in ("", "z", "9") for n in (1, 2, 10)]


@st.composite
def plans_and_rankings(draw: st.DrawFn) -> tuple[Plan, list[Candidate]]:
    ids = draw(st.lists(st.sampled_from(ID_POOL), max_size=8, unique=True))
    partners = [partner(pid, window=draw(st.integers(1, 96))) for pid in ids]
    strategy = draw(st.sampled_from(list(OfferStrategy)))
    width = 1 if strategy is OfferStrategy.SEQUENTIAL else draw(st.integers(2, 4))
    return new_plan(strategy, width), ranking(*partners)


@settings(max_examples=75)
@given(plans_and_rankings(), st.lists(st.tuples(st.sampled_from(["decline", "expire"]), st.integers(0, 3))))
def test_offers_go_out_in_rank_order_never_twice_until_the_referral_is_unmatched(
    plan_and_ranking: tuple[Plan, list[Candidate]], answers: list[tuple[str, int]]
) -> None:
    plan, ranked = plan_and_ranking
    windows = {c.partner.id: c.partner.response_window_hours for c in ranked}
    now = NOW
    submitted(plan, ranked, now)
    # Every open offer is declined or expires, in an order the test draws, until the plan gives up.
    answers = [*answers, *[("expire", 0)] * (len(ranked) + 1)]
    for answer, which in answers:
        if plan.status is not PlanStatus.OFFERING:
            break
        assert 0 < len(plan.open_offers) <= plan.width
        now += HOUR
        if answer == "decline":
            assert plan.declined(plan.open_offers[which % len(plan.open_offers)].partner_id)
        else:
            now = max(now, min(o.respond_by for o in plan.open_offers))
            assert plan.expire_due(now)
        plan.offer(ranked, now, HOUR)

    events = plan.pending
    event(f"{len(ranked)} candidate(s), {plan.strategy.value}")
    assert plan.status is PlanStatus.UNMATCHED
    assert isinstance(events[-1].data, ReferralUnmatched)
    assert sum(isinstance(e.data, ReferralUnmatched) for e in events) == 1
    if ranked:
        assert isinstance(events[0].data, ReferralMatched)
        assert [c.partner_id for c in events[0].data.candidates] == [c.partner.id for c in ranked]
    offers = [e.data for e in events if isinstance(e.data, ReferralOffered)]
    assert [o.partner_id for o in offers] == [c.partner.id for c in ranked]  # in rank order, each once
    assert [o.round for o in offers] == list(range(1, len(ranked) + 1))
    assert all(o.respond_by == o.offered_at + HOUR * windows[o.partner_id] for o in offers)
    assert plan.offered == [c.partner.id for c in ranked]
    assert all(e.subject == RID and e.source == SOURCE for e in events)


# -- rank ------------------------------------------------------------------------------------------------

CATEGORIES = [ServiceCategory.LEGAL, ServiceCategory.TAX]
PARTNER_MARKETS = ["AE", "SA", "SG", "GB", "MIDDLE_EAST", "ASEAN", "EUROPE"]
REQUEST_MARKETS = ["AE", "SG", "GB", "MIDDLE_EAST"]
REGION_OF = {"AE": "MIDDLE_EAST", "SA": "MIDDLE_EAST", "SG": "ASEAN", "GB": "EUROPE"}
LANGUAGES = ["en", "zh-Hans", "zh-Hant", "ar"]

requests_st = st.builds(
    Request,
    category=st.sampled_from(CATEGORIES),
    markets=st.lists(st.sampled_from(REQUEST_MARKETS), min_size=1, max_size=2, unique=True),
    languages=st.lists(st.sampled_from(LANGUAGES), max_size=3, unique=True),
    sector=st.sampled_from([None, "C", "C27", "K64"]),
    description=st.sampled_from(["", "company formation in Dubai", "tax advice"]),
    exclude=st.frozensets(st.sampled_from(ID_POOL), max_size=2),
)

stats_st = st.builds(
    PartnerStats,
    open_referrals=st.integers(0, 12),
    offers=st.integers(0, 20),
    accepted=st.integers(0, 20),
    completed=st.integers(0, 20),
    rating_sum=st.integers(0, 100),
    rating_count=st.integers(0, 20),
    response_hours_sum=st.floats(0, 500),
    responses=st.integers(0, 10),
    last_offered_at=st.one_of(st.none(), st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 3, 1))),
)


# Strategies are built once: building them inside the composite below costs more than drawing from them.
_mostly = st.sampled_from([True, True, True, False])
_extra_markets = st.sets(st.sampled_from(PARTNER_MARKETS), max_size=3)
_categories = st.sets(st.sampled_from(CATEGORIES))
_languages = st.sets(st.sampled_from(LANGUAGES), max_size=3)
_windows = st.integers(1, 96)
_capacities = st.integers(1, 12)


@st.composite
def partners_for(draw: st.DrawFn, request: Request, pid: str) -> Partner:
    """A partner that, more often than not, offers the category and covers the markets (by name or region)."""
    markets = set(draw(_extra_markets))
    if draw(_mostly):
        markets |= {REGION_OF.get(m, m) if draw(st.booleans()) else m for m in request.markets}
    categories = set(draw(_categories))
    if draw(_mostly):
        categories.add(request.category)
    return partner(
        pid,
        markets=frozenset(markets or {"BR"}),
        categories=frozenset(categories or {ServiceCategory.MARKETING}),
        languages=frozenset(draw(_languages)),
        window=draw(_windows),
        capacity=draw(_capacities),
        active=draw(_mostly),
        name=pid[::-1],  # names that do not sort like the ids, so that the tie-break is seen to be the id
    )


_ids = st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=10, unique=True)
_margins = st.sampled_from([0.0, 0.05, 0.2, 1.0])  # 1.0: everyone is in the fairness band
Scenario = tuple[list[Partner], Request, dict[str, PartnerStats], float]


@st.composite
def scenarios(draw: st.DrawFn, history: bool = True) -> Scenario:
    request = draw(requests_st)
    ids = draw(_ids)
    partners = [draw(partners_for(request, pid)) for pid in ids]
    stats = {pid: draw(stats_st) for pid in ids if history and draw(st.booleans())}
    margin = draw(_margins) if history else 0.0
    return partners, request, stats, margin


def _summary(ranked: list[Candidate]) -> list[tuple[str, float, dict[str, float], list[str]]]:
    return [(c.partner.id, c.score, c.factors, c.reasons) for c in ranked]


@settings(max_examples=60)
@given(scenarios())
def test_rank_returns_exactly_the_eligible_partners_with_scores_in_range(scenario: Scenario) -> None:
    partners, request, stats, margin = scenario
    ranked = rank(partners, request, stats, fairness_margin=margin)
    event("3+ ranked" if len(ranked) >= 3 else f"{len(ranked)} ranked")
    assert all(eligible(c.partner, request, stats.get(c.partner.id, NEW)) for c in ranked)
    assert [c.partner.id for c in ranked if c.partner.id in request.exclude] == []
    assert sorted(c.partner.id for c in ranked) == sorted(
        p.id for p in partners if eligible(p, request, stats.get(p.id, NEW))
    )
    assert all(0.0 <= c.score <= 1.0 for c in ranked)
    assert all(0.0 <= value <= 1.0 for c in ranked for value in c.factors.values())
    # The score is the weighted mean of the factors (which are rounded to 4 decimals, as is the score).
    weights = Weights()
    total = sum(getattr(weights, name) for name in FACTORS)
    for c in ranked:
        assert set(c.factors) == set(FACTORS)
        mean = sum(getattr(weights, name) * c.factors[name] for name in FACTORS) / total
        assert abs(c.score - mean) <= 1e-4
    assert all(c.reasons[0] == f"offers {request.category.value}" for c in ranked)


@settings(max_examples=40)
@given(scenarios(history=False))
def test_without_offer_history_or_fairness_band_the_order_is_score_then_id(scenario: Scenario) -> None:
    partners, request, _, _ = scenario
    ranked = rank(partners, request, {}, fairness_margin=0.0)
    keys = [(-c.score, c.partner.id) for c in ranked]
    assert keys == sorted(keys)


def _offered_key(stats: PartnerStats) -> tuple[int, datetime]:
    at = stats.last_offered_at
    return (0, NOW) if at is None else (1, at.replace(tzinfo=UTC) if at.tzinfo is None else at)


@settings(max_examples=40)
@given(scenarios())
def test_the_fairness_band_comes_first_least_recently_offered_first(scenario: Scenario) -> None:
    partners, request, stats, margin = scenario
    ranked = rank(partners, request, stats, fairness_margin=margin)
    if not ranked:
        return
    best = max(c.score for c in ranked)
    in_band = [c.score >= best - margin - 1e-9 for c in ranked]
    assert in_band == sorted(in_band, reverse=True)  # the band, then the rest
    band = [c for c, inside in zip(ranked, in_band, strict=True) if inside]
    rest = [c for c, inside in zip(ranked, in_band, strict=True) if not inside]
    band_keys = [(*_offered_key(stats.get(c.partner.id, NEW)), c.partner.id) for c in band]
    assert band_keys == sorted(band_keys)
    rest_keys = [(-c.score, c.partner.id) for c in rest]
    assert rest_keys == sorted(rest_keys)


@settings(max_examples=50)
@given(scenarios(), st.data())
def test_a_partner_of_another_category_never_changes_the_ranking(scenario: Scenario, data: st.DataObject) -> None:
    partners, request, stats, margin = scenario
    taken = {p.id for p in partners}
    pid = data.draw(st.sampled_from([i for i in [*ID_POOL, "outsider-1", "outsider-2"] if i not in taken]))
    others = [c for c in ServiceCategory if c is not request.category]
    outsider = data.draw(partners_for(request, pid)).model_copy(
        update={"categories": {c: frozenset() for c in data.draw(st.sets(st.sampled_from(others), min_size=1))}}
    )
    if data.draw(st.booleans()):
        stats = {**stats, pid: data.draw(stats_st)}  # its history changes nothing either
    position = data.draw(st.integers(0, len(partners)))
    with_outsider = [*partners[:position], outsider, *partners[position:]]
    assert _summary(rank(with_outsider, request, stats, fairness_margin=margin)) == _summary(
        rank(partners, request, stats, fairness_margin=margin)
    )


@settings(max_examples=30)
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_ranking_does_not_depend_on_the_order_of_the_partners(scenario: Scenario, rng: random.Random) -> None:
    partners, request, stats, margin = scenario
    shuffled = list(partners)
    rng.shuffle(shuffled)
    assert _summary(rank(shuffled, request, stats, fairness_margin=margin)) == _summary(
        rank(partners, request, stats, fairness_margin=margin)
    )


def test_a_partner_without_a_free_slot_is_never_ranked() -> None:
    full = partner("full-firm", capacity=2)
    assert rank([full], Request(LEGAL, ["AE"]), {"full-firm": replace(NEW, open_referrals=2)}) == []
    assert [
        c.partner.id for c in rank([full], Request(LEGAL, ["AE"]), {"full-firm": replace(NEW, open_referrals=1)})
    ] == ["full-firm"]


def test_region_reasons_name_only_the_regions_that_cover_the_market() -> None:
    by_country = rank([partner("by-country", frozenset(REGIONS["ASEAN"]))], Request(LEGAL, ["ASEAN"]), {})
    by_region = rank([partner("two-regions", frozenset({"ASEAN", "EUROPE"}))], Request(LEGAL, ["SG"]), {})
    assert by_country[0].reasons[1] == "covers ASEAN"  # every member country listed by name
    assert by_country[0].factors["market"] == 1.0
    assert by_region[0].reasons[1] == "covers SG through ASEAN"
    assert by_region[0].factors["market"] == 0.8


def test_partners_of_about_equal_merit_take_turns() -> None:
    equals = [partner(pid) for pid in ("a-firm", "b-firm", "c-firm", "d-firm")]
    last_week, yesterday = NOW - timedelta(days=7), NOW - timedelta(days=1)
    stats = {
        "a-firm": replace(NEW, last_offered_at=yesterday),
        "b-firm": replace(NEW, last_offered_at=last_week.replace(tzinfo=None)),  # naive: read as UTC
        "d-firm": replace(NEW, last_offered_at=last_week + timedelta(hours=1)),
    }
    ranked = rank(equals, Request(LEGAL, ["AE"]), stats)
    assert len({c.score for c in ranked}) == 1
    # Never offered first, then the longest since the last offer.
    assert [c.partner.id for c in ranked] == ["c-firm", "b-firm", "d-firm", "a-firm"]
    assert [c.partner.id for c in rank(equals, Request(LEGAL, ["AE"]), stats, fairness_margin=0.0)] == [
        "c-firm",
        "b-firm",
        "d-firm",
        "a-firm",
    ]
