"""Matching's use cases (`matching.service`) end to end on in-memory fakes: what a submitted referral, an answer,
a deadline or an operator's assignment leads to, read in the events the plan store published."""

from datetime import timedelta

import pytest

from goglobal_contract.enums import DeclineReason, OfferStrategy, ServiceCategory
from goglobal_contract.envelope import Envelope
from goglobal_contract.events import (
    NeedDetails,
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralAssigned,
    ReferralDeclined,
    ReferralExpired,
    ReferralMatched,
    ReferralOffered,
    ReferralOfferWithdrawn,
    ReferralSubmitted,
    ReferralUnmatched,
)
from goglobal_shared.errors import PermanentEventError
from matching.consumers.referral_events import router
from matching.engine import DirectoryIndex, Partner
from matching.errors import NoPlan, PartnerNotAssignable
from matching.plan import PlanStatus
from matching.service import MatchingService, Submission
from tests.service.clock import FakeClock
from tests.service.matching.conftest import HOUR
from tests.service.matching.fakes import FakeHistory, FakePlans

RID = "0000018f2a0b3c4d5e6f708192a3b4c5"


def partner(pid: str, window_hours: int = 48, active: bool = True) -> Partner:
    return Partner(
        id=pid,
        name=pid.title(),
        categories={ServiceCategory.LEGAL: frozenset()},
        markets=frozenset({"AE"}),
        languages=frozenset(),
        response_window_hours=window_hours,
        capacity=10,
        active=active,
    )


def submitted(strategy: OfferStrategy | None = None, referral_id: str = RID) -> ReferralSubmitted:
    need = NeedDetails(service_category=ServiceCategory.LEGAL, target_markets=["AE"], offer_strategy=strategy)
    return ReferralSubmitted(
        referral_id=referral_id,
        request_id="req-1",
        enterprise_id="ent-1",
        enterprise_name="Acme",
        need=need,
        submitted_at=FakeClock().now,
    )


def in_directory(directory: DirectoryIndex, *partners: Partner) -> None:
    for p in partners:
        directory.upsert(p, 1)


async def matched(service: MatchingService, plans: FakePlans) -> list[str]:
    """Matches the referral; the partner ids in ranked order."""
    await service.match([Submission(submitted())])
    return [c.partner_id for c in plans.payloads(ReferralMatched)[0].candidates]


def declined(partner_id: str, clock: FakeClock) -> ReferralDeclined:
    return ReferralDeclined(
        referral_id=RID, partner_id=partner_id, reason=DeclineReason.NO_CAPACITY, declined_at=clock.now
    )


async def test_a_submitted_referral_is_ranked_and_offered_to_the_best_candidate(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha"), partner("beta"))
    ranked = await matched(service, plans)
    assert sorted(ranked) == ["alpha", "beta"]
    [offer] = plans.payloads(ReferralOffered)
    assert (offer.partner_id, offer.round, offer.respond_by) == (ranked[0], 1, clock.now + 48 * HOUR)
    assert [e.type for e in plans.published] == [ReferralMatched.event_type, ReferralOffered.event_type]
    assert plans.stored[RID].version == 1


async def test_a_redelivered_submission_keeps_the_first_decision(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha"))
    await matched(service, plans)
    in_directory(directory, partner("beta"))
    clock.advance(timedelta(minutes=5))
    await service.match([Submission(submitted())])
    assert [o.partner_id for o in plans.payloads(ReferralOffered)] == ["alpha"]
    assert len(plans.published) == 2


async def test_no_candidate_means_unmatched(service: MatchingService, plans: FakePlans) -> None:
    await service.match([Submission(submitted())])
    [unmatched] = plans.payloads(ReferralUnmatched)
    assert unmatched.reason == "no active partner with free capacity covers this need"
    assert plans.stored[RID].status is PlanStatus.UNMATCHED
    assert plans.payloads(ReferralMatched) == []


async def test_a_decline_offers_the_next_candidate_and_counts_the_answer(
    service: MatchingService, plans: FakePlans, history: FakeHistory, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha"), partner("beta"))
    first, second = await matched(service, plans)
    clock.advance(2 * HOUR)
    await service.declined("decline-1", declined(first, clock))
    assert [(o.partner_id, o.round) for o in plans.payloads(ReferralOffered)] == [(first, 1), (second, 2)]
    assert (history.stats[first].declined, history.stats[first].response_hours_sum) == (1, 2.0)


async def test_a_redelivered_decline_changes_nothing(
    service: MatchingService, plans: FakePlans, history: FakeHistory, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha"), partner("beta"), partner("gamma"))
    first, *_ = await matched(service, plans)
    for _ in range(2):
        await service.declined("decline-1", declined(first, clock))
    assert len(plans.payloads(ReferralOffered)) == 2
    assert history.stats[first].declined == 1


async def test_an_expired_offer_is_offered_to_the_next_candidate(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha", window_hours=24), partner("beta", window_hours=24))
    first, second = await matched(service, plans)
    clock.advance(23 * HOUR)
    assert await service.expire_due() == 0
    clock.advance(HOUR)
    assert await service.expire_due() == 1
    [expired] = plans.payloads(ReferralExpired)
    assert expired.partner_id == first
    assert [o.partner_id for o in plans.payloads(ReferralOffered)] == [first, second]
    assert await service.expire_due() == 0  # fired once


async def test_the_last_expiry_leaves_the_referral_unmatched(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha", window_hours=24))
    await matched(service, plans)
    clock.advance(25 * HOUR)
    assert await service.expire_due() == 1
    [unmatched] = plans.payloads(ReferralUnmatched)
    assert unmatched.reason == "no partner left to offer after 1 offer(s)"
    assert await plans.due(clock.now) == []


async def test_an_acceptance_withdraws_the_other_parallel_offers(
    service: MatchingService, plans: FakePlans, history: FakeHistory, directory: DirectoryIndex, clock: FakeClock
) -> None:
    in_directory(directory, partner("alpha"), partner("beta"))
    await service.match([Submission(submitted(OfferStrategy.PARALLEL))])
    offered = [o.partner_id for o in plans.payloads(ReferralOffered)]
    assert sorted(offered) == ["alpha", "beta"]
    accepted = ReferralAccepted(referral_id=RID, partner_id=offered[1], accepted_at=clock.now)
    await service.accepted("accept-1", accepted)
    [withdrawn] = plans.payloads(ReferralOfferWithdrawn)
    assert (withdrawn.partner_id, withdrawn.reason) == (offered[0], OfferWithdrawalReason.ACCEPTED_ELSEWHERE)
    assert (history.stats[offered[1]].accepted, history.stats[offered[1]].open_referrals) == (1, 1)
    await service.ended("withdrawn-1", RID, OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE)
    assert history.stats[offered[1]].open_referrals == 0  # the slot frees up


async def test_an_operator_assigns_an_unmatched_referral_to_an_active_partner(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    await service.match([Submission(submitted())])
    in_directory(directory, partner("alpha"), partner("resting", active=False))
    with pytest.raises(PartnerNotAssignable):
        await service.assign(ReferralAssigned(referral_id=RID, partner_id="resting", assigned_at=clock.now))
    await service.assign(ReferralAssigned(referral_id=RID, partner_id="alpha", assigned_at=clock.now))
    [offer] = plans.payloads(ReferralOffered)
    assert offer.partner_id == "alpha"
    assert plans.stored[RID].status is PlanStatus.OFFERING


async def test_a_decline_and_an_expiry_racing_on_one_plan_are_decided_in_turn(
    service: MatchingService, plans: FakePlans, directory: DirectoryIndex, clock: FakeClock
) -> None:
    """The compare-and-set of the plan store: the change that lost reads the plan again and decides anew."""
    in_directory(directory, partner("alpha", window_hours=1), partner("beta"), partner("gamma"))
    first, second, _ = await matched(service, plans)
    clock.advance(HOUR)
    plans.meanwhile.append(lambda: service.declined("decline-1", declined(first, clock)))
    assert await service.expire_due() == 0  # the offer the expiry was for is gone: the decline came first
    assert [o.partner_id for o in plans.payloads(ReferralOffered)] == [first, second]
    assert plans.payloads(ReferralExpired) == []
    assert plans.changes_lost == 1


async def test_the_consumer_dead_letters_what_can_never_apply(service: MatchingService, clock: FakeClock) -> None:
    routes = router(service)
    for payload in (
        declined("alpha", clock),
        ReferralAssigned(referral_id=RID, partner_id="nobody", assigned_at=clock.now),
    ):
        with pytest.raises(PermanentEventError):
            await routes.handle(Envelope.wrap(payload, source="/test", subject=RID))
    with pytest.raises(NoPlan):
        await service.declined("decline-1", declined("alpha", clock))
