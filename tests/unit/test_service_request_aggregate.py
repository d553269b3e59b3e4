"""The service-request aggregate: submission, the referral lifecycle commands, their guards and their audit trail.

Pure: no repository, no broker. Every command gets its own cause id and timestamp so the history entries and
the queued events can be checked exactly. Matching's decisions (`matched`, `unmatched`, `offered`, `expired`,
`offer_withdrawn`) return False, changing nothing, when they arrive too late to matter. With each change intake
also queues what every partner concerned is told of it (offers, acceptances, withdrawals...): the exact queue is
checked here; tests/unit/test_partner_messages.py checks what partners may and may not learn.
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from goglobal_contract.enums import DeclineReason, Outcome, ServiceCategory
from goglobal_contract.enums import ReferralStatus as S
from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    ContactDetails,
    NeedDetails,
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralAssigned,
    ReferralClosed,
    ReferralCompleted,
    ReferralDeclined,
    ReferralRated,
    ReferralStarted,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmittedNeed,
)
from goglobal_contract.partner_events import (
    EnterpriseIdentity,
    EnterpriseProfileSummary,
    NeedSummary,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    PartnerEvent,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)
from goglobal_contract.state_machine import TERMINAL, TRANSITIONS, can_transition
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.service_request import Completion, Decline, Need, Rating
from intake.domain.service_requests import Actor, DomainError, NotAParty, Offer, Referral, ServiceRequest, submit

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SOURCE = "/goglobal/intake"

ENTERPRISE_ID = "0000018f2a0b3c4d5e6f708192a3b4c5"
CONTACT = {"name": "Li Wei", "email": "li.wei@brightsolar.example.cn", "phone": "+8613812345678"}
ENTERPRISE: dict[str, Any] = {
    "legal_name_zh": "深圳光明太阳能有限公司",
    "legal_name_en": "Shenzhen Bright Solar Co., Ltd.",
    "uscc": "91440300MA5FJ6QW16",
    "hq_province": "Guangdong",
    "hq_city": "Shenzhen",
    "sector": "C27",
    "size_band": "medium",
    "contact": CONTACT,
    "consent": {"share_contact_with_accepted_partners": True, "receive_email": True},
    "preferred_languages": ["zh-Hans", "en"],
}
# The profile as intake holds it when a partner is offered the referral or accepts it.
PROFILE = EnterpriseProfile.model_validate(ENTERPRISE)
# What a partner is told of the enterprise before it accepts: no names, no contact.
SUMMARY = EnterpriseProfileSummary(
    sector="C27", size_band="medium", hq_province="Guangdong", preferred_languages=["zh-Hans", "en"]
)
# ... and once it accepted: who the enterprise is, with the contact it consented to share.
IDENTITY = EnterpriseIdentity(
    enterprise_id=ENTERPRISE_ID,
    legal_name_zh="深圳光明太阳能有限公司",
    legal_name_en="Shenzhen Bright Solar Co., Ltd.",
    hq_province="Guangdong",
    hq_city="Shenzhen",
    contact=ContactDetails(**CONTACT),
)
RESPONSE_WINDOW = timedelta(hours=48)  # an offer's respond-by time is this long after it was made

ENTERPRISE_ACTOR = "enterprise:" + ENTERPRISE_ID
MATCHING_ACTOR = "service:matching"
OPERATOR_ACTOR = "operator:ops-1"
PARTNER_A, PARTNER_B, PARTNER_C = "partner-a", "partner-b", "partner-c"

P = TypeVar("P", bound=EventPayload)


def need(category: ServiceCategory = ServiceCategory.LEGAL, markets: tuple[str, ...] = ("AE", "SA")) -> Need:
    return Need(service_category=category, target_markets=list(markets), description="Dubai subsidiary")


def payload(envelope: Envelope, kind: type[P]) -> P:
    assert envelope.type == kind.event_type
    assert isinstance(envelope.data, kind)
    return envelope.data


class Clock:
    """Hands out a fresh (actor, time) pair per command: cause ids `c1`, `c2`, ... and one minute apart."""

    def __init__(self) -> None:
        self.step = 0

    def tick(self, label: str) -> tuple[Actor, datetime]:
        self.step += 1
        return Actor(label, f"c{self.step}"), T0 + timedelta(minutes=self.step)


def new_request(clock: Clock, needs: int = 1) -> tuple[ServiceRequest, str]:
    actor, now = clock.tick(ENTERPRISE_ACTOR)
    request = submit(ENTERPRISE_ID, ENTERPRISE, [need() for _ in range(needs)], actor, now, idempotency_key="idem-1")
    return request, request.referrals[0].id


def steps(ref: ServiceRequest, rid: str) -> list[tuple[Any, ...]]:
    """(actor, action, from, to, cause_id) of every history entry of one referral."""
    return [(h["actor"], h["action"], h["from"], h["to"], h["cause_id"]) for h in ref.referral(rid).history]


def offer(
    request: ServiceRequest,
    rid: str,
    partner: str,
    actor: Actor,
    now: datetime,
    enterprise: EnterpriseProfile | None = PROFILE,
    round_: int = 1,
) -> bool:
    """Matching offered the referral to `partner` at `now`, to answer within RESPONSE_WINDOW."""
    return request.offered(Offer(rid, partner, now, now + RESPONSE_WINDOW, round_), enterprise, actor, now)


def expire(request: ServiceRequest, rid: str, partner: str, actor: Actor, now: datetime) -> bool:
    """Matching expired `partner`'s offer (made RESPONSE_WINDOW before its respond-by time, if there is one)."""
    deadline = request.referral(rid).offer_deadlines.get(partner)
    return request.expired(rid, partner, deadline - RESPONSE_WINDOW if deadline else now, actor, now)


# What the need of `need()` looks like to a partner.
NEED_SUMMARY = NeedSummary(
    service_category=ServiceCategory.LEGAL, target_markets=["AE", "SA"], description="Dubai subsidiary"
)


def offered_to(rid: str, partner: str, at: datetime, round_: int = 1) -> ReferralOfferedToPartner:
    """The offer `offer` makes to `partner` at `at`, as the partner is told of it."""
    return ReferralOfferedToPartner(
        partner_id=partner,
        referral_id=rid,
        need=NEED_SUMMARY,
        enterprise=SUMMARY,
        offered_at=at,
        respond_by=at + RESPONSE_WINDOW,
        round=round_,
    )


def withdrawn_from(rid: str, partners: list[str], why: OfferWithdrawalReason, at: datetime) -> list[EventPayload]:
    return [OfferWithdrawnFromPartner(partner_id=p, referral_id=rid, reason=why, withdrawn_at=at) for p in partners]


def queued_since(request: ServiceRequest, count: int) -> list[EventPayload]:
    """The payloads queued after the first `count` events, each checked to be intake's and about its referral."""
    new = request.pending[count:]
    for envelope in new:
        assert envelope.source == SOURCE
        assert envelope.subject == getattr(envelope.data, "referral_id", None)
    return [e.data for e in new]


# -- reaching each state through the aggregate's own commands ------------------------------------------


def _to_matched(request: ServiceRequest, rid: str, clock: Clock) -> None:
    assert request.matched(rid, [{"partner_id": PARTNER_A, "score": 1.0}], *clock.tick(MATCHING_ACTOR))


def _to_unmatched(request: ServiceRequest, rid: str, clock: Clock) -> None:
    assert request.unmatched(rid, "nobody", *clock.tick(MATCHING_ACTOR))


def _to_offered(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_matched(request, rid, clock)
    assert offer(request, rid, PARTNER_A, *clock.tick(MATCHING_ACTOR))


def _to_declined(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_offered(request, rid, clock)
    request.decline(rid, PARTNER_A, Decline(reason=DeclineReason.NO_CAPACITY), *clock.tick("partner:" + PARTNER_A))


def _to_expired(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_offered(request, rid, clock)
    assert expire(request, rid, PARTNER_A, *clock.tick(MATCHING_ACTOR))


def _to_accepted(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_offered(request, rid, clock)
    request.accept(rid, PARTNER_A, PROFILE, *clock.tick("partner:" + PARTNER_A))


def _to_in_progress(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_accepted(request, rid, clock)
    request.start(rid, PARTNER_A, *clock.tick("partner:" + PARTNER_A))


def _to_completed(request: ServiceRequest, rid: str, clock: Clock) -> None:
    _to_in_progress(request, rid, clock)
    done = Completion(outcome=Outcome.ENGAGED, notes="Engagement letter signed.")
    request.complete(rid, PARTNER_A, done, *clock.tick("partner:" + PARTNER_A))


def _to_withdrawn(request: ServiceRequest, rid: str, clock: Clock) -> None:
    request.withdraw(rid, *clock.tick(ENTERPRISE_ACTOR))


def _to_closed(request: ServiceRequest, rid: str, clock: Clock) -> None:
    request.close(rid, "duplicate", *clock.tick(OPERATOR_ACTOR))


def _stay(request: ServiceRequest, rid: str, clock: Clock) -> None:
    pass


REACH: dict[S, Callable[[ServiceRequest, str, Clock], None]] = {
    S.SUBMITTED: _stay,
    S.MATCHED: _to_matched,
    S.UNMATCHED: _to_unmatched,
    S.OFFERED: _to_offered,
    S.DECLINED: _to_declined,
    S.EXPIRED: _to_expired,
    S.ACCEPTED: _to_accepted,
    S.IN_PROGRESS: _to_in_progress,
    S.COMPLETED: _to_completed,
    S.WITHDRAWN: _to_withdrawn,
    S.CLOSED: _to_closed,
}
# `matching` exists in the state machine, but no command of the aggregate leads there.
REACHABLE = sorted(REACH)
OPEN = [s for s in REACHABLE if s not in TERMINAL]
ENDED = [s for s in REACHABLE if s in TERMINAL]
TAKEN = [S.ACCEPTED, S.IN_PROGRESS, *ENDED]  # a partner accepted, or the referral ended: offers are moot


def at(status: S) -> tuple[ServiceRequest, str, Clock]:
    clock = Clock()
    request, rid = new_request(clock)
    REACH[status](request, rid, clock)
    assert request.referral(rid).status is status
    return request, rid, clock


def assert_refused(
    request: ServiceRequest, command: Callable[[], object], error: type[DomainError] = DomainError
) -> None:
    """The command raises exactly `error` (DomainError means: not NotAParty) and leaves no trace at all."""
    before = copy.deepcopy(request)
    with pytest.raises(DomainError) as caught:
        command()
    assert type(caught.value) is error
    assert request == before


def assert_superseded(request: ServiceRequest, decision: Callable[[], bool]) -> None:
    """A matching decision that came too late: it returns False and changes nothing."""
    before = copy.deepcopy(request)
    assert decision() is False
    assert request == before


# -- submit ----------------------------------------------------------------------------------------------

MARKETS = ["AE", "SA", "SG", "GB", "BR", "MIDDLE_EAST", "ASEAN"]
needs_st = st.builds(
    Need,
    service_category=st.sampled_from(list(ServiceCategory)),
    target_markets=st.lists(st.sampled_from(MARKETS), min_size=1, max_size=4),
    description=st.text(max_size=40),
    languages=st.lists(st.sampled_from(["en", "zh-Hans", "zh-Hant", "ar"]), max_size=3),
)


@settings(deadline=None, max_examples=50)
@given(st.lists(needs_st, min_size=1, max_size=10))
def test_submit_makes_one_referral_and_one_submitted_event_per_need(needs: list[Need]) -> None:
    actor = Actor(ENTERPRISE_ACTOR, "http-req-1")
    request = submit(ENTERPRISE_ID, ENTERPRISE, needs, actor, T0, idempotency_key="idem-1")

    assert (request.enterprise_id, request.enterprise_name) == (ENTERPRISE_ID, ENTERPRISE["legal_name_en"])
    assert (request.created_at, request.idempotency_key, request.version) == (T0, "idem-1", 0)
    assert [r.need for r in request.referrals] == needs
    assert len({r.id for r in request.referrals} | {request.id}) == len(needs) + 1
    assert request.progress == {"submitted": len(needs)}
    assert request.status == "open"

    assert len(request.pending) == len(needs)
    whole = [
        SubmittedNeed(referral_id=r.id, need=NeedDetails.model_validate(r.need.model_dump(mode="json")))
        for r in request.referrals
    ]
    for position, (referral, envelope) in enumerate(zip(request.referrals, request.pending, strict=True)):
        assert referral.status is S.SUBMITTED
        assert (referral.offered_to, referral.open_offers, referral.partner_id) == ([], [], None)
        assert steps(request, referral.id) == [(ENTERPRISE_ACTOR, "submitted", "submitted", "submitted", "http-req-1")]
        assert referral.history[0]["at"] == T0
        assert (envelope.source, envelope.subject) == (SOURCE, referral.id)
        event = payload(envelope, ReferralSubmitted)
        assert event == ReferralSubmitted(
            referral_id=referral.id,
            request_id=request.id,
            enterprise_id=ENTERPRISE_ID,
            enterprise_name="Shenzhen Bright Solar Co., Ltd.",
            enterprise_sector="C27",
            enterprise_languages=["zh-Hans", "en"],
            need=NeedDetails.model_validate(referral.need.model_dump(mode="json")),
            submitted_at=T0,
            request_needs=whole if position == 0 else [],  # the first tells the whole request, for its e-mail
        )
        assert event.need.model_dump() == referral.need.model_dump()


def test_the_submitted_event_carries_no_contact_details() -> None:
    request = submit(ENTERPRISE_ID, ENTERPRISE, [need(), need(ServiceCategory.TAX)], Actor(ENTERPRISE_ACTOR, "r"), T0)
    for envelope in request.pending:
        document = envelope.to_document()["data"]
        assert set(document) == {
            "referral_id",
            "request_id",
            "enterprise_id",
            "enterprise_name",
            "enterprise_sector",
            "enterprise_languages",
            "need",
            "submitted_at",
            "request_needs",
        }
        text = json.dumps(document, ensure_ascii=False)
        for detail in CONTACT.values():
            assert detail not in text
        assert "contact" not in text and "consent" not in text


def test_an_enterprise_without_sector_or_languages_still_submits() -> None:
    bare = {"legal_name_en": "Bare Co."}
    request = submit(ENTERPRISE_ID, bare, [need()], Actor(ENTERPRISE_ACTOR, "r"), T0)
    event = payload(request.pending[0], ReferralSubmitted)
    assert (event.enterprise_sector, event.enterprise_languages, event.enterprise_name) == (None, [], "Bare Co.")


# -- the happy path --------------------------------------------------------------------------------------


def test_offered_accepted_in_progress_completed_rated() -> None:
    clock = Clock()
    request, rid = new_request(clock, needs=2)
    other = request.referrals[1].id
    partner = "partner:" + PARTNER_A

    candidates = [{"partner_id": PARTNER_A, "score": 0.9}, {"partner_id": PARTNER_B, "score": 0.8}]
    assert request.matched(rid, candidates, *clock.tick(MATCHING_ACTOR))
    offer_actor, offered_at = clock.tick(MATCHING_ACTOR)
    assert offer(request, rid, PARTNER_A, offer_actor, offered_at)
    ref = request.referral(rid)
    assert (ref.status, ref.candidates, ref.open_offers, ref.offered_to) == (
        S.OFFERED,
        candidates,
        [PARTNER_A],
        [PARTNER_A],
    )
    assert ref.offer_deadlines == {PARTNER_A: offered_at + RESPONSE_WINDOW}
    # The two submitted events, then the offer as partner-a is told of it: matching announces its own decisions,
    # intake tells the partner in the same write that records the offer.
    assert queued_since(request, 2) == [offered_to(rid, PARTNER_A, offered_at)]

    accept_actor, accepted_at = clock.tick(partner)
    request.accept(rid, PARTNER_A, PROFILE, accept_actor, accepted_at)
    assert (ref.status, ref.partner_id, ref.open_offers) == (S.ACCEPTED, PARTNER_A, [])

    start_actor, started_at = clock.tick(partner)
    request.start(rid, PARTNER_A, start_actor, started_at)

    completion = Completion(outcome=Outcome.ADVICE_GIVEN, notes="Advised on free-zone licensing.")
    complete_actor, completed_at = clock.tick(partner)
    request.complete(rid, PARTNER_A, completion, complete_actor, completed_at)
    assert ref.completion == {"outcome": "advice_given", "notes": "Advised on free-zone licensing."}

    rate_actor, rated_at = clock.tick(ENTERPRISE_ACTOR)
    request.rate(rid, Rating(score=4, comment="Clear advice."), rate_actor, rated_at)
    assert ref.rating == {"score": 4, "comment": "Clear advice.", "rated_at": rated_at}

    events = request.pending[3:]
    assert [(e.source, e.subject) for e in events] == [(SOURCE, rid)] * 6
    assert [e.data for e in events] == [
        ReferralAccepted(referral_id=rid, partner_id=PARTNER_A, accepted_at=accepted_at),
        ReferralAcceptedByPartner(partner_id=PARTNER_A, referral_id=rid, accepted_at=accepted_at, enterprise=IDENTITY),
        ReferralStarted(referral_id=rid, partner_id=PARTNER_A, started_at=started_at),
        ReferralCompleted(
            referral_id=rid,
            partner_id=PARTNER_A,
            outcome=Outcome.ADVICE_GIVEN,
            notes="Advised on free-zone licensing.",
            completed_at=completed_at,
        ),
        ReferralRated(referral_id=rid, partner_id=PARTNER_A, score=4, comment="Clear advice.", rated_at=rated_at),
        ReferralRatedByEnterprise(
            partner_id=PARTNER_A, referral_id=rid, score=4, comment="Clear advice.", rated_at=rated_at
        ),
    ]
    assert [e.type for e in events] == [
        "hk.goglobal.referral.accepted.v1",
        "hk.goglobal.partner.referral_accepted.v1",
        "hk.goglobal.referral.started.v1",
        "hk.goglobal.referral.completed.v1",
        "hk.goglobal.referral.rated.v1",
        "hk.goglobal.partner.referral_rated.v1",
    ]

    assert steps(request, rid) == [
        (ENTERPRISE_ACTOR, "submitted", "submitted", "submitted", "c1"),
        (MATCHING_ACTOR, "matched", "submitted", "matched", "c2"),
        (MATCHING_ACTOR, "offered", "matched", "offered", "c3"),
        (partner, "accepted", "offered", "accepted", "c4"),
        (partner, "in_progress", "accepted", "in_progress", "c5"),
        (partner, "completed", "in_progress", "completed", "c6"),
        (ENTERPRISE_ACTOR, "rated", "completed", "completed", "c7"),
    ]
    assert [h["at"] for h in ref.history] == [T0 + timedelta(minutes=m) for m in range(1, 8)]
    assert [h["why"] for h in ref.history[1:]] == [
        "2 candidate(s)",
        "offered to partner-a",
        "accepted the offer",
        "started work",
        "completed: advice_given",
        "4/5",
    ]
    assert all(request.has_applied(rid, f"c{n}") for n in range(1, 8))
    assert not request.has_applied(rid, "c8")

    # The second need was never touched, so the request as a whole stays open.
    assert len(request.referral(other).history) == 1
    assert request.progress == {"completed": 1, "submitted": 1}
    assert request.status == "open"
    request.withdraw(other, *clock.tick(ENTERPRISE_ACTOR))
    assert request.progress == {"completed": 1, "withdrawn": 1}
    assert request.status == "done"


def test_a_decline_is_recorded_and_the_next_partner_can_accept() -> None:
    request, rid, clock = at(S.OFFERED)
    actor, now = clock.tick("partner:" + PARTNER_A)
    queued = len(request.pending)
    request.decline(rid, PARTNER_A, Decline(reason=DeclineReason.OTHER, text="Firm is closing."), actor, now)
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers, ref.partner_id) == (S.DECLINED, [], None)
    assert ref.decline == {"reason": "other", "text": "Firm is closing."}
    # The partner that declined knows it already: no partner event.
    assert queued_since(request, queued) == [
        ReferralDeclined(
            referral_id=rid, partner_id=PARTNER_A, reason=DeclineReason.OTHER, text="Firm is closing.", declined_at=now
        )
    ]
    assert ref.history[-1]["why"] == "partner-a declined: other Firm is closing."
    assert steps(request, rid)[-1] == ("partner:" + PARTNER_A, "declined", "offered", "declined", actor.cause_id)

    assert offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    assert (ref.open_offers, ref.offered_to) == ([PARTNER_B], [PARTNER_A, PARTNER_B])
    # The partner that declined was offered earlier, so it is a party, but its offer is no longer open.
    assert_refused(request, lambda: request.accept(rid, PARTNER_A, PROFILE, *clock.tick("partner:" + PARTNER_A)))
    queued = len(request.pending)
    actor, now = clock.tick("partner:" + PARTNER_B)
    request.accept(rid, PARTNER_B, PROFILE, actor, now)
    assert (ref.status, ref.partner_id) == (S.ACCEPTED, PARTNER_B)
    # partner-a's offer had ended already: it hears nothing of the acceptance.
    assert queued_since(request, queued) == [
        ReferralAccepted(referral_id=rid, partner_id=PARTNER_B, accepted_at=now),
        ReferralAcceptedByPartner(partner_id=PARTNER_B, referral_id=rid, accepted_at=now, enterprise=IDENTITY),
    ]


def test_a_decline_without_text_has_a_tidy_reason() -> None:
    request, rid, _ = at(S.DECLINED)
    assert request.referral(rid).history[-1]["why"] == "partner-a declined: no_capacity"
    assert payload(request.pending[-1], ReferralDeclined).text == ""


# -- parallel offers -------------------------------------------------------------------------------------


def test_parallel_offers_stay_offered_until_the_last_one_ends() -> None:
    request, rid, clock = at(S.OFFERED)
    ref = request.referral(rid)
    queued = len(request.pending)
    also, at_also = clock.tick(MATCHING_ACTOR)
    assert offer(request, rid, PARTNER_B, also, at_also)
    third, at_third = clock.tick(MATCHING_ACTOR)
    assert offer(request, rid, PARTNER_C, third, at_third)
    assert queued_since(request, queued) == [offered_to(rid, PARTNER_B, at_also), offered_to(rid, PARTNER_C, at_third)]
    assert ref.status is S.OFFERED
    assert ref.open_offers == ref.offered_to == [PARTNER_A, PARTNER_B, PARTNER_C]
    assert steps(request, rid)[-2] == (MATCHING_ACTOR, "offered", "offered", "offered", also.cause_id)
    assert ref.history[-2]["why"] == "also offered to partner-b"

    decline_actor, _ = clock.tick("partner:" + PARTNER_B)
    request.decline(rid, PARTNER_B, Decline(reason=DeclineReason.NO_CAPACITY), decline_actor, T0)
    assert (ref.status, ref.open_offers) == (S.OFFERED, [PARTNER_A, PARTNER_C])
    assert steps(request, rid)[-1] == (decline_actor.label, "declined", "offered", "offered", decline_actor.cause_id)
    assert payload(request.pending[-1], ReferralDeclined).partner_id == PARTNER_B

    expire_actor, _ = clock.tick(MATCHING_ACTOR)
    queued = len(request.pending)
    assert expire(request, rid, PARTNER_C, expire_actor, T0)
    assert (ref.status, ref.open_offers) == (S.OFFERED, [PARTNER_A])
    assert queued_since(request, queued) == [
        OfferExpiredForPartner(partner_id=PARTNER_C, referral_id=rid, offered_at=at_third, expired_at=T0)
    ]
    assert steps(request, rid)[-1] == (MATCHING_ACTOR, "expired", "offered", "offered", expire_actor.cause_id)
    assert ref.history[-1]["why"] == "partner-c did not answer in time"

    # The first acceptance wins; every other open offer is gone with it, and its partner is told so.
    assert offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    queued = len(request.pending)
    accept_actor, accepted_at = clock.tick("partner:" + PARTNER_B)
    request.accept(rid, PARTNER_B, PROFILE, accept_actor, accepted_at)
    assert (ref.status, ref.partner_id, ref.open_offers) == (S.ACCEPTED, PARTNER_B, [])
    assert queued_since(request, queued) == [
        ReferralAccepted(referral_id=rid, partner_id=PARTNER_B, accepted_at=accepted_at),
        ReferralAcceptedByPartner(partner_id=PARTNER_B, referral_id=rid, accepted_at=accepted_at, enterprise=IDENTITY),
        *withdrawn_from(rid, [PARTNER_A], OfferWithdrawalReason.ACCEPTED_ELSEWHERE, accepted_at),
    ]
    assert_refused(request, lambda: request.accept(rid, PARTNER_A, PROFILE, *clock.tick("partner:" + PARTNER_A)))
    assert_superseded(request, lambda: expire(request, rid, PARTNER_A, *clock.tick(MATCHING_ACTOR)))
    assert_superseded(
        request,
        lambda: request.offer_withdrawn(
            rid, PARTNER_A, OfferWithdrawalReason.ACCEPTED_ELSEWHERE, *clock.tick(MATCHING_ACTOR)
        ),
    )


def test_the_last_open_offer_expiring_moves_the_referral_to_expired() -> None:
    request, rid, clock = at(S.OFFERED)
    offered_at = request.referral(rid).history[-1]["at"]
    actor, now = clock.tick(MATCHING_ACTOR)
    assert expire(request, rid, PARTNER_A, actor, now)
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers) == (S.EXPIRED, [])
    assert steps(request, rid)[-1] == (MATCHING_ACTOR, "expired", "offered", "expired", actor.cause_id)
    # Matching announced the expiry; intake told the partner whose offer it was.
    assert [e.type.split(".")[-2] for e in request.pending] == ["submitted", "referral_offered", "offer_expired"]
    assert queued_since(request, 2) == [
        OfferExpiredForPartner(partner_id=PARTNER_A, referral_id=rid, offered_at=offered_at, expired_at=now)
    ]
    assert_refused(request, lambda: request.accept(rid, PARTNER_A, PROFILE, *clock.tick("partner:" + PARTNER_A)))
    # Matching moves on: the next partner, or unmatched.
    assert offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    assert ref.open_offers == [PARTNER_B]


def test_an_offer_withdrawn_by_matching_is_no_longer_open() -> None:
    request, rid, clock = at(S.OFFERED)
    assert offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    actor, now = clock.tick(MATCHING_ACTOR)
    queued = len(request.pending)
    assert request.offer_withdrawn(rid, PARTNER_B, OfferWithdrawalReason.CLOSED_BY_OPERATOR, actor, now)
    assert queued_since(request, queued) == withdrawn_from(
        rid, [PARTNER_B], OfferWithdrawalReason.CLOSED_BY_OPERATOR, now
    )
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers) == (S.OFFERED, [PARTNER_A])
    assert steps(request, rid)[-1] == (MATCHING_ACTOR, "offer_withdrawn", "offered", "offered", actor.cause_id)
    assert ref.history[-1]["why"] == "partner-b: closed_by_operator"
    assert_refused(request, lambda: request.accept(rid, PARTNER_B, PROFILE, *clock.tick("partner:" + PARTNER_B)))
    assert_superseded(
        request,
        lambda: request.offer_withdrawn(
            rid, PARTNER_B, OfferWithdrawalReason.CLOSED_BY_OPERATOR, *clock.tick(MATCHING_ACTOR)
        ),
    )
    assert_superseded(request, lambda: expire(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR)))


def test_offering_a_partner_whose_offer_is_open_does_not_open_it_twice() -> None:
    request, rid, clock = at(S.OFFERED)
    assert_superseded(request, lambda: offer(request, rid, PARTNER_A, *clock.tick(MATCHING_ACTOR)))  # not told twice
    ref = request.referral(rid)
    assert ref.open_offers == [PARTNER_A]
    request.decline(rid, PARTNER_A, Decline(reason=DeclineReason.NO_CAPACITY), *clock.tick("partner:" + PARTNER_A))
    assert (ref.status, ref.open_offers) == (S.DECLINED, [])


# -- who may accept, decline, start, complete ------------------------------------------------------------


@pytest.mark.parametrize("command", ["accept", "decline"])
def test_only_the_partner_currently_offered_can_answer(command: str) -> None:
    request, rid, clock = at(S.OFFERED)

    def answer(partner: str) -> Callable[[], None]:
        actor, now = clock.tick("partner:" + partner)
        if command == "accept":
            return lambda: request.accept(rid, partner, PROFILE, actor, now)
        return lambda: request.decline(rid, partner, Decline(reason=DeclineReason.NO_CAPACITY), actor, now)

    assert_refused(request, answer(PARTNER_B), NotAParty)  # never offered: must not learn the referral exists

    # partner-a declines, partner-b is offered: partner-a is a party, but not the current offer any more.
    request.decline(rid, PARTNER_A, Decline(reason=DeclineReason.NO_CAPACITY), *clock.tick("partner:" + PARTNER_A))
    offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    assert_refused(request, answer(PARTNER_A), DomainError)
    assert_refused(request, answer(PARTNER_C), NotAParty)
    answer(PARTNER_B)()
    assert request.referral(rid).status is (S.ACCEPTED if command == "accept" else S.DECLINED)


@pytest.mark.parametrize(
    "status", [S.DECLINED, S.EXPIRED, S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED, S.WITHDRAWN, S.CLOSED]
)
@pytest.mark.parametrize("command", ["accept", "decline"])
def test_a_partner_cannot_answer_once_its_offer_is_no_longer_open(status: S, command: str) -> None:
    if status in (S.WITHDRAWN, S.CLOSED):
        request, rid, clock = at(S.OFFERED)
        REACH[status](request, rid, clock)
    else:
        request, rid, clock = at(status)
    assert PARTNER_A in request.referral(rid).offered_to
    actor, now = clock.tick("partner:" + PARTNER_A)
    if command == "accept":
        assert_refused(request, lambda: request.accept(rid, PARTNER_A, PROFILE, actor, now))
    else:
        decline = Decline(reason=DeclineReason.NO_CAPACITY)
        assert_refused(request, lambda: request.decline(rid, PARTNER_A, decline, actor, now))


@pytest.mark.parametrize("status", [S.SUBMITTED, S.MATCHED, S.UNMATCHED])
def test_nobody_can_answer_before_any_offer(status: S) -> None:
    request, rid, clock = at(status)
    assert_refused(
        request, lambda: request.accept(rid, PARTNER_A, PROFILE, *clock.tick("partner:" + PARTNER_A)), NotAParty
    )


def test_only_the_accepting_partner_can_start_and_complete() -> None:
    request, rid, clock = at(S.OFFERED)
    done = Completion(outcome=Outcome.ENGAGED, notes="Signed.")

    def start(partner: str) -> Callable[[], None]:
        return lambda: request.start(rid, partner, *clock.tick("partner:" + partner))

    def complete(partner: str) -> Callable[[], None]:
        return lambda: request.complete(rid, partner, done, *clock.tick("partner:" + partner))

    # The partner currently offered has not accepted yet.
    assert_refused(request, start(PARTNER_A), DomainError)
    assert_refused(request, complete(PARTNER_A), DomainError)

    request.decline(rid, PARTNER_A, Decline(reason=DeclineReason.NO_CAPACITY), *clock.tick("partner:" + PARTNER_A))
    offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    request.accept(rid, PARTNER_B, PROFILE, *clock.tick("partner:" + PARTNER_B))

    for command in (start, complete):
        assert_refused(request, command(PARTNER_A), DomainError)  # offered earlier, did not accept
        assert_refused(request, command(PARTNER_C), NotAParty)  # never offered
    assert_refused(request, complete(PARTNER_B), DomainError)  # accepted is not in progress yet

    start(PARTNER_B)()
    assert_refused(request, start(PARTNER_B), DomainError)  # started twice
    assert_refused(request, complete(PARTNER_A), DomainError)
    assert_refused(request, complete(PARTNER_C), NotAParty)
    complete(PARTNER_B)()
    assert_refused(request, complete(PARTNER_B), DomainError)  # completed twice
    ref = request.referral(rid)
    assert (ref.status, ref.partner_id) == (S.COMPLETED, PARTNER_B)
    completed = [payload(e, ReferralCompleted) for e in request.pending if e.type == ReferralCompleted.event_type]
    assert [c.partner_id for c in completed] == [PARTNER_B]


# -- rating ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in REACHABLE if s is not S.COMPLETED])
def test_only_a_completed_referral_can_be_rated(status: S) -> None:
    request, rid, clock = at(status)
    assert_refused(request, lambda: request.rate(rid, Rating(score=5), *clock.tick(ENTERPRISE_ACTOR)))


def test_a_referral_is_rated_only_once() -> None:
    request, rid, clock = at(S.COMPLETED)
    actor, now = clock.tick(ENTERPRISE_ACTOR)
    queued = len(request.pending)
    request.rate(rid, Rating(score=2, comment="Slow."), actor, now)
    assert queued_since(request, queued) == [
        ReferralRated(referral_id=rid, partner_id=PARTNER_A, score=2, comment="Slow.", rated_at=now),
        ReferralRatedByEnterprise(partner_id=PARTNER_A, referral_id=rid, score=2, comment="Slow.", rated_at=now),
    ]
    assert_refused(request, lambda: request.rate(rid, Rating(score=5), *clock.tick(ENTERPRISE_ACTOR)))
    assert request.referral(rid).rating == {"score": 2, "comment": "Slow.", "rated_at": now}


# -- assigning -------------------------------------------------------------------------------------------


def test_an_unmatched_referral_can_be_assigned_and_stays_unmatched() -> None:
    request, rid, clock = at(S.UNMATCHED)
    actor, now = clock.tick(OPERATOR_ACTOR)
    queued = len(request.pending)
    request.assign(rid, PARTNER_C, actor, now)
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers, ref.offered_to) == (S.UNMATCHED, [], [])
    assert steps(request, rid)[-1] == (OPERATOR_ACTOR, "assigned", "unmatched", "unmatched", actor.cause_id)
    assert ref.history[-1]["why"] == "assigned to partner-c"
    # The partner hears of it only when matching offers it.
    assert queued_since(request, queued) == [ReferralAssigned(referral_id=rid, partner_id=PARTNER_C, assigned_at=now)]
    assert request.pending[-1].subject == rid

    # Matching then offers it to the assigned partner, who can accept.
    assert offer(request, rid, PARTNER_C, *clock.tick(MATCHING_ACTOR))
    request.accept(rid, PARTNER_C, PROFILE, *clock.tick("partner:" + PARTNER_C))
    assert ref.partner_id == PARTNER_C


@pytest.mark.parametrize("status", [s for s in REACHABLE if s is not S.UNMATCHED])
def test_only_an_unmatched_referral_can_be_assigned(status: S) -> None:
    request, rid, clock = at(status)
    assert_refused(request, lambda: request.assign(rid, PARTNER_C, *clock.tick(OPERATOR_ACTOR)))


# -- withdrawing and closing -----------------------------------------------------------------------------

# Who the withdrawal/closure event names: the accepting partner, else the partner with the open offer.
PARTY_AT = {S.OFFERED: PARTNER_A, S.ACCEPTED: PARTNER_A, S.IN_PROGRESS: PARTNER_A}
ACCEPTED_BY_A = (S.ACCEPTED, S.IN_PROGRESS)  # the states of REACH in which partner-a accepted


@pytest.mark.parametrize("status", OPEN)
def test_the_enterprise_can_withdraw_from_every_open_state(status: S) -> None:
    request, rid, clock = at(status)
    actor, now = clock.tick(ENTERPRISE_ACTOR)
    queued = len(request.pending)
    request.withdraw(rid, actor, now)
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers) == (S.WITHDRAWN, [])
    assert steps(request, rid)[-1] == (ENTERPRISE_ACTOR, "withdrawn", status.value, "withdrawn", actor.cause_id)
    # The partner that accepted is told the enterprise withdrew; a partner with an open offer, that it is gone.
    told: list[EventPayload] = []
    if status in ACCEPTED_BY_A:
        told = [ReferralWithdrawnByEnterprise(partner_id=PARTNER_A, referral_id=rid, withdrawn_at=now)]
    elif status is S.OFFERED:
        told = withdrawn_from(rid, [PARTNER_A], OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, now)
    assert queued_since(request, queued) == [
        ReferralWithdrawn(referral_id=rid, partner_id=PARTY_AT.get(status), withdrawn_at=now),
        *told,
    ]
    assert request.status == "done"


@pytest.mark.parametrize("status", OPEN)
def test_an_operator_can_close_from_every_open_state(status: S) -> None:
    request, rid, clock = at(status)
    actor, now = clock.tick(OPERATOR_ACTOR)
    queued = len(request.pending)
    request.close(rid, "enterprise went quiet", actor, now)
    ref = request.referral(rid)
    assert (ref.status, ref.open_offers) == (S.CLOSED, [])
    assert steps(request, rid)[-1] == (OPERATOR_ACTOR, "closed", status.value, "closed", actor.cause_id)
    assert ref.history[-1]["why"] == "enterprise went quiet"
    told: list[EventPayload] = []
    if status in ACCEPTED_BY_A:
        told = [
            ReferralClosedByOperator(
                partner_id=PARTNER_A, referral_id=rid, reason="enterprise went quiet", closed_at=now
            )
        ]
    elif status is S.OFFERED:
        told = withdrawn_from(rid, [PARTNER_A], OfferWithdrawalReason.CLOSED_BY_OPERATOR, now)
    assert queued_since(request, queued) == [
        ReferralClosed(referral_id=rid, partner_id=PARTY_AT.get(status), reason="enterprise went quiet", closed_at=now),
        *told,
    ]


def test_withdrawing_with_parallel_offers_names_the_first_open_offer() -> None:
    request, rid, clock = at(S.OFFERED)
    offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    queued = len(request.pending)
    actor, now = clock.tick(ENTERPRISE_ACTOR)
    request.withdraw(rid, actor, now)
    # Every partner with an open offer is told it is gone.
    assert queued_since(request, queued) == [
        ReferralWithdrawn(referral_id=rid, partner_id=PARTNER_A, withdrawn_at=now),
        *withdrawn_from(rid, [PARTNER_A, PARTNER_B], OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE, now),
    ]
    assert request.referral(rid).open_offers == []


@pytest.mark.parametrize("status", ENDED)
@pytest.mark.parametrize("command", ["withdraw", "close"])
def test_a_terminal_referral_cannot_be_withdrawn_or_closed(status: S, command: str) -> None:
    request, rid, clock = at(status)
    if command == "withdraw":
        assert_refused(request, lambda: request.withdraw(rid, *clock.tick(ENTERPRISE_ACTOR)))
    else:
        assert_refused(request, lambda: request.close(rid, "again", *clock.tick(OPERATOR_ACTOR)))


# -- what matching decided -------------------------------------------------------------------------------


def test_matching_decisions_move_the_referral_and_only_the_partners_concerned_are_told() -> None:
    """Matching announces its own decisions; intake only tells the partner an offer was made, expired, withdrawn."""
    request, rid, clock = at(S.SUBMITTED)
    ref = request.referral(rid)
    assert request.unmatched(rid, "no partner offers legal in AE", *clock.tick(MATCHING_ACTOR))
    assert (ref.status, ref.history[-1]["why"]) == (S.UNMATCHED, "no partner offers legal in AE")
    assert request.matched(rid, [{"partner_id": PARTNER_B}], *clock.tick(MATCHING_ACTOR))
    assert len(request.pending) == 1  # neither matched nor unmatched is news to a partner
    assert offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    request.decline(rid, PARTNER_B, Decline(reason=DeclineReason.NO_CAPACITY), *clock.tick("partner:" + PARTNER_B))
    again, again_at = clock.tick(MATCHING_ACTOR)
    assert offer(request, rid, PARTNER_B, again, again_at, round_=2)  # offered again: listed once
    assert ref.offered_to == [PARTNER_B]
    assert payload(request.pending[-1], ReferralOfferedToPartner) == offered_to(rid, PARTNER_B, again_at, round_=2)
    assert expire(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR))
    assert payload(request.pending[-1], OfferExpiredForPartner).offered_at == again_at
    queued = len(request.pending)
    assert request.unmatched(rid, "all declined", *clock.tick(MATCHING_ACTOR))
    assert len(request.pending) == queued
    assert (ref.status, ref.open_offers) == (S.UNMATCHED, [])
    assert [e.type for e in request.pending] == [
        "hk.goglobal.referral.submitted.v1",
        "hk.goglobal.partner.referral_offered.v1",
        "hk.goglobal.referral.declined.v1",
        "hk.goglobal.partner.referral_offered.v1",
        "hk.goglobal.partner.offer_expired.v1",
    ]
    assert [s[1:4] for s in steps(request, rid)] == [
        ("submitted", "submitted", "submitted"),
        ("unmatched", "submitted", "unmatched"),
        ("matched", "unmatched", "matched"),
        ("offered", "matched", "offered"),
        ("declined", "offered", "declined"),
        ("offered", "declined", "offered"),
        ("expired", "offered", "expired"),
        ("unmatched", "expired", "unmatched"),
    ]


@pytest.mark.parametrize("status", TAKEN)
def test_matching_decisions_that_come_too_late_change_nothing(status: S) -> None:
    request, rid, clock = at(status)
    assert_superseded(request, lambda: request.matched(rid, [], *clock.tick(MATCHING_ACTOR)))
    assert_superseded(request, lambda: request.unmatched(rid, "late", *clock.tick(MATCHING_ACTOR)))
    assert_superseded(request, lambda: offer(request, rid, PARTNER_B, *clock.tick(MATCHING_ACTOR)))
    assert_superseded(request, lambda: expire(request, rid, PARTNER_A, *clock.tick(MATCHING_ACTOR)))
    assert_superseded(
        request,
        lambda: request.offer_withdrawn(
            rid, PARTNER_A, OfferWithdrawalReason.CLOSED_BY_OPERATOR, *clock.tick(MATCHING_ACTOR)
        ),
    )


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (S.SUBMITTED, "offered"),  # the matched event comes first
        (S.MATCHED, "matched"),
        (S.OFFERED, "matched"),
        (S.OFFERED, "unmatched"),
        (S.DECLINED, "matched"),
        (S.EXPIRED, "matched"),
    ],
)
def test_a_matching_decision_the_state_machine_refuses_is_a_domain_error(status: S, decision: str) -> None:
    request, rid, clock = at(status)
    actor, now = clock.tick(MATCHING_ACTOR)
    if decision == "offered":
        assert_refused(request, lambda: offer(request, rid, PARTNER_B, actor, now))
    elif decision == "matched":
        assert_refused(request, lambda: request.matched(rid, [], actor, now))
    else:
        assert_refused(request, lambda: request.unmatched(rid, "nobody", actor, now))


def test_an_unknown_referral_is_a_key_error() -> None:
    request, _, clock = at(S.SUBMITTED)
    with pytest.raises(KeyError):
        request.withdraw("nope", *clock.tick(ENTERPRISE_ACTOR))
    with pytest.raises(KeyError):
        offer(request, "nope", PARTNER_A, *clock.tick(MATCHING_ACTOR))
    with pytest.raises(KeyError):
        request.has_applied("nope", "c1")


def test_has_applied_is_per_referral() -> None:
    clock = Clock()
    request, rid = new_request(clock, needs=2)
    other = request.referrals[1].id
    request.matched(rid, [], Actor(MATCHING_ACTOR, "event-1"), T0)
    assert request.has_applied(rid, "event-1")
    assert not request.has_applied(other, "event-1")


# -- random command sequences ----------------------------------------------------------------------------

COMMANDS = ("accept", "decline", "start", "complete", "rate", "withdraw", "close", "assign")
MATCHING_COMMANDS = ("matched", "unmatched", "offered", "expired", "offer_withdrawn")
ACTORS = (ENTERPRISE_ACTOR, OPERATOR_ACTOR, MATCHING_ACTOR, "partner:" + PARTNER_A, "partner:" + PARTNER_B)
PARTNER_IDS = (PARTNER_A, PARTNER_B, PARTNER_C)
EVENT_OF: dict[str, type[EventPayload]] = {
    "accept": ReferralAccepted,
    "decline": ReferralDeclined,
    "start": ReferralStarted,
    "complete": ReferralCompleted,
    "rate": ReferralRated,
    "withdraw": ReferralWithdrawn,
    "close": ReferralClosed,
    "assign": ReferralAssigned,
}
TARGET = {
    "accept": S.ACCEPTED,
    "start": S.IN_PROGRESS,
    "complete": S.COMPLETED,
    "withdraw": S.WITHDRAWN,
    "close": S.CLOSED,
    "matched": S.MATCHED,
    "unmatched": S.UNMATCHED,
    "offered": S.OFFERED,
}
# Ending one of several open offers keeps the referral offered; ending the last one moves it here.
LAST_OFFER_ENDS = {"decline": S.DECLINED, "expired": S.EXPIRED}


def _reachable() -> set[S]:
    seen, frontier = {S.SUBMITTED}, [S.SUBMITTED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()] - seen:
            seen.add(nxt)
            frontier.append(nxt)
    return seen


LEGAL_STATES = _reachable()

# Half of the commands are NEXT, resolved when it runs to the command that moves the referral along the happy
# path, so that sequences reach the later states; the other half are any command at all.
NEXT = "<next>"
NEXT_COMMAND = {
    S.SUBMITTED: "matched",
    S.UNMATCHED: "matched",
    S.MATCHED: "offered",
    S.DECLINED: "offered",
    S.EXPIRED: "offered",
    S.OFFERED: "accept",
    S.ACCEPTED: "start",
    S.IN_PROGRESS: "complete",
    S.COMPLETED: "rate",
}
# A command names a partner, or PARTY, resolved when it runs to the partner that the command is meant for: the
# accepting partner if there is one, else the first open offer, else partner-a.
PARTY = "<party>"
UNKNOWN = -1


@dataclass(frozen=True)
class Command:
    name: str
    referral: int  # an index into the request's referrals (modulo their number); UNKNOWN names no referral
    partner: str
    actor: str
    score: int
    decline_reason: DeclineReason
    withdrawal: OfferWithdrawalReason  # why matching withdrew an offer
    consent: bool  # the enterprise's consent to share its contact when a partner accepts


commands_st = st.builds(
    Command,
    name=st.sampled_from((NEXT,) * len(COMMANDS + MATCHING_COMMANDS) + COMMANDS + MATCHING_COMMANDS),
    referral=st.sampled_from((0, 0, 0, 1, 1, 1, UNKNOWN)),
    partner=st.sampled_from((*PARTNER_IDS, PARTY, PARTY, PARTY, PARTY)),
    actor=st.sampled_from(ACTORS),
    score=st.integers(1, 5),
    decline_reason=st.sampled_from(list(DeclineReason)),
    withdrawal=st.sampled_from(list(OfferWithdrawalReason)),
    consent=st.booleans(),
)
PROFILE_WITH_CONSENT = {
    consent: EnterpriseProfile.model_validate(
        {**ENTERPRISE, "consent": {"share_contact_with_accepted_partners": consent, "receive_email": True}}
    )
    for consent in (True, False)
}


def run(request: ServiceRequest, command: Command, rid: str, actor: Actor, now: datetime) -> bool:
    """Runs the command; False when a matching decision was superseded (the other commands raise instead)."""
    partner = command.partner
    match command.name:
        case "accept":
            request.accept(rid, partner, PROFILE_WITH_CONSENT[command.consent], actor, now)
        case "decline":
            text = "closing down" if command.decline_reason is DeclineReason.OTHER else ""
            request.decline(rid, partner, Decline(reason=command.decline_reason, text=text), actor, now)
        case "start":
            request.start(rid, partner, actor, now)
        case "complete":
            request.complete(rid, partner, Completion(outcome=Outcome.ENGAGED, notes="done"), actor, now)
        case "rate":
            request.rate(rid, Rating(score=command.score), actor, now)
        case "withdraw":
            request.withdraw(rid, actor, now)
        case "close":
            request.close(rid, "closed by an operator", actor, now)
        case "assign":
            request.assign(rid, partner, actor, now)
        case "matched":
            return request.matched(rid, [{"partner_id": p} for p in PARTNER_IDS], actor, now)
        case "unmatched":
            return request.unmatched(rid, "nobody left", actor, now)
        case "offered":
            return offer(request, rid, partner, actor, now)
        case "expired":
            return expire(request, rid, partner, actor, now)
        case "offer_withdrawn":
            return request.offer_withdrawn(rid, partner, command.withdrawal, actor, now)
        case _:
            raise AssertionError(command.name)
    return True


SUPERSEDED = "superseded"  # a matching decision that returns False


def expected_outcome(before: Referral, command: Command) -> type[Exception] | str | None:
    """What the rules say: None for success, SUPERSEDED for a late matching decision, else the exception type."""
    status, partner = before.status, command.partner
    taken = status in TERMINAL or before.partner_id is not None
    match command.name:
        case "accept" | "decline":
            if partner not in before.offered_to:
                return NotAParty
            return None if status is S.OFFERED and partner in before.open_offers else DomainError
        case "start" | "complete":
            if partner not in before.offered_to:
                return NotAParty
            ok = before.partner_id == partner and can_transition(status, TARGET[command.name])
            return None if ok else DomainError
        case "rate":
            return None if status is S.COMPLETED and before.rating is None else DomainError
        case "assign":
            return None if status is S.UNMATCHED else DomainError
        case "withdraw" | "close":
            return None if can_transition(status, TARGET[command.name]) else DomainError
        case "expired" | "offer_withdrawn":
            return None if partner in before.open_offers else SUPERSEDED
        case "offered":
            if taken:
                return SUPERSEDED
            return None if status is S.OFFERED or can_transition(status, S.OFFERED) else DomainError
        case _:  # matched, unmatched
            if taken:
                return SUPERSEDED
            return None if can_transition(status, TARGET[command.name]) else DomainError


def expected_status(before: Referral, command: Command) -> S:
    if command.name in LAST_OFFER_ENDS:
        return LAST_OFFER_ENDS[command.name] if before.open_offers == [command.partner] else before.status
    return TARGET.get(command.name, before.status)


Told = tuple[type[PartnerEvent], str, object]  # what a partner is told: the event, the partner, a detail


def told(data: EventPayload) -> Told:
    """The detail is the reason of a withdrawn offer, or whether an acceptance carries the contact."""
    assert isinstance(data, PartnerEvent)
    detail: object = None
    if isinstance(data, OfferWithdrawnFromPartner):
        detail = data.reason
    elif isinstance(data, ReferralAcceptedByPartner):
        detail = data.enterprise.contact is not None
    return type(data), data.partner_id, detail


def expected_told(before: Referral, command: Command) -> list[Told]:
    """The partner events an applied command queues, in order, after its own lifecycle event if it has one."""
    partner = command.partner

    def offers_gone(partners: list[str], why: OfferWithdrawalReason) -> list[Told]:
        return [(OfferWithdrawnFromPartner, p, why) for p in partners]

    match command.name:
        case "accept":
            others = [p for p in before.open_offers if p != partner]
            return [
                (ReferralAcceptedByPartner, partner, command.consent),
                *offers_gone(others, OfferWithdrawalReason.ACCEPTED_ELSEWHERE),
            ]
        case "rate":
            assert before.partner_id is not None
            return [(ReferralRatedByEnterprise, before.partner_id, None)]
        case "withdraw" | "close":
            ended: type[PartnerEvent] = ReferralWithdrawnByEnterprise
            why = OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE
            if command.name == "close":
                ended, why = ReferralClosedByOperator, OfferWithdrawalReason.CLOSED_BY_OPERATOR
            accepted = [] if before.partner_id is None else [(ended, before.partner_id, None)]
            return [*accepted, *offers_gone(before.open_offers, why)]
        case "offered":
            return [(ReferralOfferedToPartner, partner, None)]
        case "expired":
            return [(OfferExpiredForPartner, partner, None)]
        case "offer_withdrawn":
            return offers_gone([partner], command.withdrawal)
        case _:
            return []


def check_invariants(request: ServiceRequest, n_needs: int) -> None:
    assert sum(request.progress.values()) == len(request.referrals) == n_needs
    assert request.status == ("done" if all(r.status in TERMINAL for r in request.referrals) else "open")
    for ref in request.referrals:
        assert ref.status in LEGAL_STATES
        assert not ref.open_offers or ref.status is S.OFFERED
        assert set(ref.open_offers) <= set(ref.offered_to)
        assert len(set(ref.open_offers)) == len(ref.open_offers)
        assert len(set(ref.offered_to)) == len(ref.offered_to)
        assert ref.partner_id is None or ref.partner_id in ref.offered_to
        assert ref.partner_id is None or not ref.open_offers
        assert ref.rating is None or ref.status is S.COMPLETED
        assert ref.history[-1]["to"] == ref.status.value
        for earlier, later in zip(ref.history, ref.history[1:], strict=False):
            assert later["from"] == earlier["to"]
            assert earlier["to"] == later["to"] or can_transition(S(earlier["to"]), S(later["to"]))


@settings(deadline=None, max_examples=150)
@given(st.integers(1, 2), st.lists(commands_st, min_size=10, max_size=60))
def test_random_command_sequences_keep_the_aggregate_consistent(n_needs: int, commands: list[Command]) -> None:
    request = submit(ENTERPRISE_ID, ENTERPRISE, [need() for _ in range(n_needs)], Actor(ENTERPRISE_ACTOR, "c0"), T0)
    check_invariants(request, n_needs)

    for step, command in enumerate(commands, start=1):
        unknown = command.referral == UNKNOWN
        rid = "no-such-referral" if unknown else request.referrals[command.referral % n_needs].id
        current = None if unknown else request.referral(rid)
        if command.name == NEXT:
            command = replace(command, name=NEXT_COMMAND.get(current.status, "close") if current else "close")
        if command.partner == PARTY:
            named = current and (current.partner_id or next(iter(current.open_offers), None))
            command = replace(command, partner=named or PARTNER_A)
        if command.name == "offered" and current and command.partner in current.open_offers:
            continue  # offering an open offer again: see test_offering_a_partner_whose_offer_is_open_...
        cause = f"c{step}"
        actor, now = Actor(command.actor, cause), T0 + timedelta(minutes=step)
        before = copy.deepcopy(request)
        expected = KeyError if unknown else expected_outcome(before.referral(rid), command)

        outcome: type[Exception] | str | None = None
        try:
            if not run(request, command, rid, actor, now):
                outcome = SUPERSEDED
        except (DomainError, KeyError) as exc:  # anything else fails the test
            outcome = type(exc)
        assert outcome == expected, f"{command}: expected {expected}, got {outcome}"

        if outcome is not None:
            assert request == before, "a refused or superseded command changed the aggregate"
            assert unknown or not request.has_applied(rid, cause)
            continue

        event(f"applied {command.name}")  # shows how deep the sequences go (--hypothesis-show-statistics)
        ref, old = request.referral(rid), before.referral(rid)
        # Exactly one new history entry, for this command, after the untouched earlier ones.
        assert len(ref.history) == len(old.history) + 1
        assert ref.history[:-1] == old.history
        entry = ref.history[-1]
        assert (entry["actor"], entry["cause_id"], entry["at"]) == (command.actor, cause, now)
        assert (entry["from"], entry["to"]) == (old.status.value, ref.status.value)
        assert request.has_applied(rid, cause)
        assert ref.status is expected_status(old, command)
        # The other referrals are untouched.
        assert [r for r in request.referrals if r.id != rid] == [r for r in before.referrals if r.id != rid]
        # A terminal referral never changes again, except for its one rating once completed.
        if old.status in TERMINAL:
            assert (command.name, old.status, old.rating) == ("rate", S.COMPLETED, None)
        # Commands of the enterprise, partners and operators queue exactly one lifecycle event; matching's queue
        # none (matching announces its decisions). Then come the partner events, one per partner concerned.
        assert request.pending[: len(before.pending)] == before.pending
        new_events = request.pending[len(before.pending) :]
        for queued in new_events:
            assert (queued.subject, queued.source, getattr(queued.data, "referral_id", None)) == (rid, SOURCE, rid)
        if command.name not in MATCHING_COMMANDS:
            assert new_events and isinstance(new_events[0].data, EVENT_OF[command.name])
            new_events = new_events[1:]
        assert [told(e.data) for e in new_events] == expected_told(old, command)
        check_invariants(request, n_needs)
