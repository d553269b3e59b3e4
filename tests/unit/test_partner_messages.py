"""What partners are told of a referral: the partner events intake queues with each change it records. Pure.

Before it accepts, a partner learns the need and an anonymous profile of the enterprise; the partner that accepts
learns who the enterprise is, and its contact details only if the enterprise consents at that moment. Every partner
event names the partner it is for and is about one referral (its subject). The builders are in
`intake.domain.partner_messages`; the aggregate (`intake.domain.service_requests`) decides who is told what.
"""

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from goglobal_contract.enums import DeclineReason, OfferStrategy, Outcome, ServiceCategory
from goglobal_contract.enums import ReferralStatus as S
from goglobal_contract.envelope import Envelope
from goglobal_contract.event_base import EventPayload
from goglobal_contract.events import (
    ContactDetails,
    OfferWithdrawalReason,
    ReferralAccepted,
    ReferralClosed,
    ReferralWithdrawn,
)
from goglobal_contract.partner_events import (
    PARTNER_PAYLOADS,
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
from intake.domain.inputs.enterprise import EnterpriseProfile, SizeBand
from intake.domain.inputs.service_request import Completion, Decline, Need, Rating
from intake.domain.partner_messages import identity, need_summary, offers_withdrawn, profile_summary
from intake.domain.service_requests import Actor, DomainError, Offer, ServiceRequest, submit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=48)
SOURCE = "/goglobal/intake"
ENTERPRISE_ID = "0000018f2a0b3c4d5e6f708192a3b4c5"
PARTNERS = ("harbour-legal", "gulf-tax", "lion-rock-advisory", "pearl-banking")
MATCHING = Actor("service:matching", "matching-event")
DONE = Completion(outcome=Outcome.ENGAGED, notes="Engagement letter signed.")

CONTACT = {"name": "Li Wei", "email": "li.wei@brightsolar.example.cn", "phone": "+8613812345678"}
ENTERPRISE: dict[str, Any] = {
    "legal_name_zh": "深圳明日光伏科技有限公司",
    "legal_name_en": "Shenzhen Bright Solar Technology Co., Ltd.",
    "uscc": "91440300MA5FJ6QW16",
    "hq_province": "Guangdong",
    "hq_city": "Shenzhen",
    "sector": "C27",
    "size_band": "medium",
    "contact": CONTACT,
    "consent": {"share_contact_with_accepted_partners": True, "receive_email": True},
    "preferred_languages": ["zh-Hans", "en"],
}


def profile(consent: bool, **changes: Any) -> EnterpriseProfile:
    """The enterprise's profile as intake holds it, sharing its contact with an accepting partner or not."""
    consent_doc = {"share_contact_with_accepted_partners": consent, "receive_email": True}
    return EnterpriseProfile.model_validate({**ENTERPRISE, **changes, "consent": consent_doc})


# Profiles that differ in everything a partner might learn; each value is distinct so a leak can be found.
profiles_st = st.builds(
    lambda consent, names, place, sector, size, languages, contact: profile(
        consent,
        legal_name_zh=names[0],
        legal_name_en=names[1],
        hq_province=place[0],
        hq_city=place[1],
        sector=sector,
        size_band=size,
        preferred_languages=languages,
        contact=contact,
    ),
    consent=st.booleans(),
    names=st.sampled_from(
        [
            ("深圳明日光伏科技有限公司", "Shenzhen Bright Solar Technology Co., Ltd."),
            ("杭州云帆数据有限公司", "Hangzhou Cloudsail Data Co., Ltd."),
            ("成都蜀锦纺织股份有限公司", "Chengdu Shujin Textiles Inc."),
        ]
    ),
    place=st.sampled_from([("Guangdong", "Dongguan"), ("Zhejiang", "Ningbo"), ("Sichuan", "Mianyang")]),
    sector=st.sampled_from(["C27", "C26", "G46", "K64", "M69", "A"]),
    size=st.sampled_from(list(SizeBand)),
    languages=st.lists(st.sampled_from(["zh-Hans", "zh-Hant", "en", "ar", "fr"]), min_size=1, max_size=3, unique=True),
    contact=st.sampled_from(
        [
            CONTACT,
            {"name": "Zhang Min", "email": "zhang.min@cloudsail.example.cn", "phone": "+8613912345678"},
            {"name": "Chen Jing", "email": "chen.jing@shujin.example.cn", "phone": "+8675512345678"},
        ]
    ),
)


def need(**changes: Any) -> Need:
    return Need.model_validate(
        {"service_category": "legal", "target_markets": ["AE", "SA"], "description": "Dubai subsidiary", **changes}
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def new_request(needs: int = 1) -> tuple[ServiceRequest, list[str]]:
    request = submit(ENTERPRISE_ID, ENTERPRISE, [need() for _ in range(needs)], Actor("enterprise:e", "r"), T0)
    for ref in request.referrals:
        assert request.matched(ref.id, [{"partner_id": p} for p in PARTNERS], MATCHING, T0)
    return request, [r.id for r in request.referrals]


CONSENTING = profile(consent=True)


def offer(
    request: ServiceRequest, rid: str, partner: str, now: datetime, enterprise: EnterpriseProfile = CONSENTING
) -> bool:
    """Matching offered the referral to `partner` at `now`; intake holds `enterprise` as the profile."""
    return request.offered(Offer(rid, partner, now, now + WINDOW), enterprise, MATCHING, now)


def partner_events(envelopes: list[Envelope]) -> list[PartnerEvent]:
    return [e.data for e in envelopes if isinstance(e.data, PartnerEvent)]


def text(payload: EventPayload) -> str:
    return json.dumps(payload.model_dump(mode="json"), ensure_ascii=False)


def contact_details(enterprise: EnterpriseProfile) -> tuple[str, str, str]:
    return enterprise.contact.name, str(enterprise.contact.email), enterprise.contact.phone


def introduction(enterprise: EnterpriseProfile, consented: bool) -> EnterpriseIdentity:
    """How the enterprise is introduced to the partner that accepted."""
    name, email, phone = contact_details(enterprise)
    return EnterpriseIdentity(
        enterprise_id=ENTERPRISE_ID,
        legal_name_zh=enterprise.legal_name_zh,
        legal_name_en=enterprise.legal_name_en,
        hq_province=enterprise.hq_province,
        hq_city=enterprise.hq_city,
        contact=ContactDetails(name=name, email=email, phone=phone) if consented else None,
    )


def identifying(enterprise: EnterpriseProfile) -> tuple[str, ...]:
    """What names the enterprise: a partner learns it only once it accepted."""
    return (ENTERPRISE_ID, enterprise.legal_name_zh, enterprise.legal_name_en, enterprise.uscc, enterprise.hq_city)


# -- the builders --------------------------------------------------------------------------------------------


def test_every_partner_payload_names_its_partner() -> None:
    for kind in PARTNER_PAYLOADS:
        assert issubclass(kind, PartnerEvent)
        assert kind.model_fields["partner_id"].is_required()
        assert "referral_id" in kind.model_fields


def test_the_need_summary_leaves_out_how_matching_works() -> None:
    wide = need(
        urgency="high",
        budget_band="from_50k_to_200k_usd",
        languages=["ar", "en"],
        offer_strategy=OfferStrategy.PARALLEL,
        parallel_offers=3,
        excluded_partners=["rival-firm"],
    )
    summary = need_summary(wide)
    assert summary == NeedSummary(
        service_category=ServiceCategory.LEGAL,
        target_markets=["AE", "SA"],
        description="Dubai subsidiary",
        urgency="high",
        budget_band="from_50k_to_200k_usd",
        languages=["ar", "en"],
    )
    # Which partners the enterprise excluded, and how many are offered at once, are not a partner's business.
    assert "rival-firm" not in summary.model_dump_json()
    assert set(summary.model_dump()) == set(NeedSummary.model_fields)


def test_no_profile_gives_an_empty_summary() -> None:
    assert profile_summary(None) == EnterpriseProfileSummary()
    assert offers_withdrawn("r-1", [], OfferWithdrawalReason.ACCEPTED_ELSEWHERE, T0) == []


@given(profiles_st)
def test_the_identity_names_the_enterprise_and_its_contact_only_with_consent(enterprise: EnterpriseProfile) -> None:
    consented = enterprise.consent.share_contact_with_accepted_partners
    assert identity(ENTERPRISE_ID, enterprise) == introduction(enterprise, consented)


# -- offers --------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(profiles_st, st.sampled_from(PARTNERS), st.integers(1, 5))
def test_an_offer_carries_the_profile_summary_and_nothing_that_identifies_the_enterprise(
    enterprise: EnterpriseProfile, partner: str, round_: int
) -> None:
    request, (rid,) = new_request()
    queued = len(request.pending)
    assert request.offered(
        Offer(rid, partner, T0, T0 + WINDOW, round_), enterprise, MATCHING, T0 + timedelta(minutes=1)
    )

    (envelope,) = request.pending[queued:]
    assert (envelope.source, envelope.subject, envelope.type) == (SOURCE, rid, ReferralOfferedToPartner.event_type)
    assert envelope.data == ReferralOfferedToPartner(
        partner_id=partner,
        referral_id=rid,
        need=NeedSummary(
            service_category=ServiceCategory.LEGAL, target_markets=["AE", "SA"], description="Dubai subsidiary"
        ),
        enterprise=EnterpriseProfileSummary(
            sector=enterprise.sector,
            size_band=enterprise.size_band.value,
            hq_province=enterprise.hq_province,
            preferred_languages=enterprise.preferred_languages,
        ),
        offered_at=T0,
        respond_by=T0 + WINDOW,
        round=round_,
    )
    document = envelope.data.model_dump(mode="json")
    assert set(document["enterprise"]) == {"sector", "size_band", "hq_province", "preferred_languages"}
    offered = text(envelope.data)
    for fact in (*identifying(enterprise), *contact_details(enterprise)):
        assert fact not in offered
    assert "contact" not in offered and "consent" not in offered


def test_an_offer_made_while_intake_has_no_profile_carries_an_empty_summary() -> None:
    request, (rid,) = new_request()
    assert request.offered(Offer(rid, PARTNERS[0], T0, T0 + WINDOW), None, MATCHING, T0)
    assert request.pending[-1].data == ReferralOfferedToPartner(
        partner_id=PARTNERS[0],
        referral_id=rid,
        need=need_summary(need()),
        enterprise=EnterpriseProfileSummary(),
        offered_at=T0,
        respond_by=T0 + WINDOW,
        round=1,
    )


@pytest.mark.parametrize("status", [S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED, S.WITHDRAWN, S.CLOSED])
def test_a_superseded_offer_tells_nobody(status: S) -> None:
    """An offer, expiry or withdrawal matching decided before the referral was taken or ended: nobody hears of it."""
    clock = Clock()
    request, (rid,) = new_request()
    first, late = PARTNERS[0], PARTNERS[1]
    assert offer(request, rid, first, clock.tick())
    if status is S.WITHDRAWN:
        request.withdraw(rid, Actor("enterprise:e", "w"), clock.tick())
    elif status is S.CLOSED:
        request.close(rid, "duplicate", Actor("operator:o", "c"), clock.tick())
    else:
        request.accept(rid, first, CONSENTING, Actor("partner:" + first, "a"), clock.tick())
        if status in (S.IN_PROGRESS, S.COMPLETED):
            request.start(rid, first, Actor("partner:" + first, "s"), clock.tick())
        if status is S.COMPLETED:
            request.complete(rid, first, DONE, Actor("partner:" + first, "d"), clock.tick())
    assert request.referral(rid).status is status

    before = copy.deepcopy(request)
    now = clock.tick()
    assert not offer(request, rid, late, now)
    assert not request.expired(rid, first, T0, MATCHING, now)
    assert not request.offer_withdrawn(rid, first, OfferWithdrawalReason.ACCEPTED_ELSEWHERE, MATCHING, now)
    assert request == before


def test_an_offer_already_open_is_not_told_twice() -> None:
    request, (rid,) = new_request()
    assert offer(request, rid, PARTNERS[0], T0)
    before = copy.deepcopy(request)
    assert not offer(request, rid, PARTNERS[0], T0 + timedelta(minutes=1))
    assert request == before


# -- acceptance ----------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(profiles_st, st.booleans())
def test_the_contact_reaches_the_accepting_partner_iff_the_enterprise_consents_at_acceptance(
    enterprise: EnterpriseProfile, consent_at_acceptance: bool
) -> None:
    """Whatever the consent was when the offer went out: what counts is the consent when the partner accepts."""
    clock, partner = Clock(), PARTNERS[0]
    request, (rid,) = new_request()
    assert offer(request, rid, partner, clock.tick(), enterprise)
    at_acceptance = enterprise.model_copy(
        update={
            "consent": enterprise.consent.model_copy(
                update={"share_contact_with_accepted_partners": consent_at_acceptance}
            )
        }
    )
    queued, now = len(request.pending), clock.tick()
    request.accept(rid, partner, at_acceptance, Actor("partner:" + partner, "a"), now)

    accepted, confirmation = request.pending[queued:]
    assert accepted.data == ReferralAccepted(referral_id=rid, partner_id=partner, accepted_at=now)
    assert (confirmation.source, confirmation.subject) == (SOURCE, rid)
    assert confirmation.data == ReferralAcceptedByPartner(
        partner_id=partner, referral_id=rid, accepted_at=now, enterprise=introduction(enterprise, consent_at_acceptance)
    )
    assert isinstance(confirmation.data, ReferralAcceptedByPartner)
    shown = confirmation.data.enterprise
    assert (shown.legal_name_zh, shown.legal_name_en) == (enterprise.legal_name_zh, enterprise.legal_name_en)
    confirmed = text(confirmation.data)
    for fact in contact_details(enterprise):
        assert (fact in confirmed) is consent_at_acceptance
    assert (shown.contact is not None) is consent_at_acceptance


@settings(deadline=None)
@given(st.integers(2, len(PARTNERS)), st.data())
def test_accepting_one_of_parallel_offers_withdraws_every_other_open_offer(offers: int, data: st.DataObject) -> None:
    clock = Clock()
    request, (rid,) = new_request()
    offered = list(PARTNERS[:offers])
    for partner in offered:
        assert offer(request, rid, partner, clock.tick())
    # Some offers may have ended before: they are not open any more, so they are not told again.
    ended = data.draw(st.lists(st.sampled_from(offered), unique=True, max_size=offers - 1), label="ended")
    for partner in ended:
        assert request.expired(rid, partner, T0, MATCHING, clock.tick())
    still_open = [p for p in offered if p not in ended]
    accepter = data.draw(st.sampled_from(still_open), label="accepter")

    queued, now = len(request.pending), clock.tick()
    request.accept(rid, accepter, profile(consent=False), Actor("partner:" + accepter, "a"), now)
    told = partner_events(request.pending[queued:])
    expected: list[tuple[type[PartnerEvent], str]] = [(ReferralAcceptedByPartner, accepter)]
    expected += [(OfferWithdrawnFromPartner, p) for p in still_open if p != accepter]
    assert [(type(e), e.partner_id) for e in told] == expected
    for withdrawn in told[1:]:
        assert withdrawn == OfferWithdrawnFromPartner(
            partner_id=withdrawn.partner_id,
            referral_id=rid,
            reason=OfferWithdrawalReason.ACCEPTED_ELSEWHERE,
            withdrawn_at=now,
        )
    assert all(e.subject == rid for e in request.pending[queued:])

    # Matching's own withdrawal of those offers comes later: superseded, so nobody is told twice.
    before = copy.deepcopy(request)
    for partner in offered:
        assert not request.offer_withdrawn(rid, partner, OfferWithdrawalReason.ACCEPTED_ELSEWHERE, MATCHING, now)
    assert request == before


# -- withdrawing, closing, rating ----------------------------------------------------------------------------

ENDINGS = {
    "withdraw": (ReferralWithdrawn, ReferralWithdrawnByEnterprise, OfferWithdrawalReason.WITHDRAWN_BY_ENTERPRISE),
    "close": (ReferralClosed, ReferralClosedByOperator, OfferWithdrawalReason.CLOSED_BY_OPERATOR),
}


def end(request: ServiceRequest, rid: str, command: str, now: datetime) -> None:
    if command == "withdraw":
        request.withdraw(rid, Actor("enterprise:e", "w"), now)
    else:
        request.close(rid, "duplicate", Actor("operator:o", "c"), now)


@pytest.mark.parametrize("command", sorted(ENDINGS))
@pytest.mark.parametrize("started", [False, True])
def test_an_ended_referral_is_told_to_the_partner_that_accepted_and_no_one_else(command: str, started: bool) -> None:
    clock, (first, accepter, never) = Clock(), PARTNERS[:3]
    request, (rid,) = new_request()
    assert offer(request, rid, first, clock.tick())
    request.decline(rid, first, Decline(reason=DeclineReason.NO_CAPACITY), Actor("partner:" + first, "d"), clock.tick())
    assert offer(request, rid, accepter, clock.tick())
    request.accept(rid, accepter, CONSENTING, Actor("partner:" + accepter, "a"), clock.tick())
    if started:
        request.start(rid, accepter, Actor("partner:" + accepter, "s"), clock.tick())

    queued, now = len(request.pending), clock.tick()
    end(request, rid, command, now)
    lifecycle, to_partner, _ = ENDINGS[command]
    new = request.pending[queued:]
    assert [type(e.data) for e in new] == [lifecycle, to_partner]
    assert [(e.source, e.subject) for e in new] == [(SOURCE, rid)] * 2
    expected: EventPayload = ReferralWithdrawnByEnterprise(partner_id=accepter, referral_id=rid, withdrawn_at=now)
    if command == "close":
        expected = ReferralClosedByOperator(partner_id=accepter, referral_id=rid, reason="duplicate", closed_at=now)
    assert new[1].data == expected
    assert never not in text(new[1].data) and first not in text(new[1].data)


@pytest.mark.parametrize("command", sorted(ENDINGS))
@pytest.mark.parametrize("offers", [1, 2, 3])
def test_an_ended_referral_withdraws_every_open_offer(command: str, offers: int) -> None:
    clock = Clock()
    request, (rid,) = new_request()
    for partner in PARTNERS[:offers]:
        assert offer(request, rid, partner, clock.tick())

    queued, now = len(request.pending), clock.tick()
    end(request, rid, command, now)
    lifecycle, _, reason = ENDINGS[command]
    new = request.pending[queued:]
    assert isinstance(new[0].data, lifecycle)
    assert [e.data for e in new[1:]] == [
        OfferWithdrawnFromPartner(partner_id=p, referral_id=rid, reason=reason, withdrawn_at=now)
        for p in PARTNERS[:offers]
    ]
    assert all(e.subject == rid for e in new)


@pytest.mark.parametrize("command", sorted(ENDINGS))
@pytest.mark.parametrize("offer_ends", ["never offered", "declined", "expired", "withdrawn by matching"])
def test_an_ended_referral_without_an_open_offer_or_a_partner_tells_no_partner(command: str, offer_ends: str) -> None:
    clock, partner = Clock(), PARTNERS[0]
    request, (rid,) = new_request()
    if offer_ends != "never offered":
        assert offer(request, rid, partner, clock.tick())
        if offer_ends == "declined":
            decline = Decline(reason=DeclineReason.NO_CAPACITY)
            request.decline(rid, partner, decline, Actor("partner:" + partner, "d"), clock.tick())
        elif offer_ends == "expired":
            assert request.expired(rid, partner, T0, MATCHING, clock.tick())
        else:
            assert offer(request, rid, PARTNERS[1], clock.tick())  # the referral stays offered to another
            why = OfferWithdrawalReason.CLOSED_BY_OPERATOR
            assert request.offer_withdrawn(rid, partner, why, MATCHING, clock.tick())
            request.decline(rid, PARTNERS[1], Decline(reason=DeclineReason.NO_CAPACITY), Actor("p", "d"), clock.tick())

    queued = len(request.pending)
    end(request, rid, command, clock.tick())
    assert partner_events(request.pending[queued:]) == []


def test_a_rating_is_told_to_the_partner_that_did_the_work() -> None:
    clock, partner = Clock(), PARTNERS[2]
    request, (rid,) = new_request()
    assert offer(request, rid, partner, clock.tick())
    request.accept(rid, partner, CONSENTING, Actor("partner:" + partner, "a"), clock.tick())
    request.start(rid, partner, Actor("partner:" + partner, "s"), clock.tick())
    request.complete(rid, partner, DONE, Actor("partner:" + partner, "c"), clock.tick())
    queued, now = len(request.pending), clock.tick()
    request.rate(rid, Rating(score=5, comment="Excellent."), Actor("enterprise:e", "r"), now)
    assert partner_events(request.pending[queued:]) == [
        ReferralRatedByEnterprise(partner_id=partner, referral_id=rid, score=5, comment="Excellent.", rated_at=now)
    ]
    assert request.pending[-1].subject == rid


# -- any sequence --------------------------------------------------------------------------------------------

CONTACTS = tuple(CONTACT.values())


class PartnerMessages(RuleBasedStateMachine):
    """Two referrals of one request go through any sequence of commands and matching decisions while the
    enterprise changes its consent. After each step, every partner event queued by it is checked: addressed to the
    partner concerned, about the referral acted on, and carrying the contact only to the partner that accepted
    when the enterprise consented at that moment. A refused or superseded step changes nothing at all."""

    def __init__(self) -> None:
        super().__init__()
        self.request, self.rids = new_request(needs=2)
        self.consent = True
        self.clock = Clock()
        self.checked = len(self.request.pending)
        # The consent at the moment each (referral, partner) acceptance was recorded.
        self.consent_at_acceptance: dict[tuple[str, str], bool] = {}

    # The state intake holds now; the profile every command is given.
    def profile(self) -> EnterpriseProfile:
        return profile(self.consent)

    def step(self, rid: str, command: Callable[[], object], answering: str | None = None) -> bool:
        """Runs one command on referral `rid` (an acceptance or decline by `answering`) and checks what it queued
        against the referral before and after; True when it applied."""
        before = copy.deepcopy(self.request)
        old = before.referral(rid)
        try:
            applied = command()
        except DomainError:
            applied = False
        if applied is False:
            assert self.request == before, "a refused or superseded command changed the aggregate"
            return False
        ref = self.request.referral(rid)
        told: list[tuple[type[PartnerEvent], str]] = []
        for envelope in self.request.pending[self.checked :]:
            assert (envelope.source, envelope.subject) == (SOURCE, rid)
            assert getattr(envelope.data, "referral_id", None) == rid
            if isinstance(envelope.data, PartnerEvent):
                self.check_concerned(envelope.data, old.open_offers, ref.open_offers, ref.partner_id, ref.offered_to)
                told.append((type(envelope.data), envelope.data.partner_id))
        self.checked = len(self.request.pending)
        # ... and nobody concerned is left out: a new offer, an acceptance, an offer that ended without its
        # partner's own answer.
        opened = [p for p in ref.open_offers if p not in old.open_offers]
        closed = [p for p in old.open_offers if p not in ref.open_offers and p != answering]
        expected: list[tuple[type[PartnerEvent], str]] = [(ReferralOfferedToPartner, p) for p in opened]
        if ref.partner_id is not None and old.partner_id is None:
            expected.append((ReferralAcceptedByPartner, ref.partner_id))
        assert set(expected) <= set(told)
        assert set(closed) <= {p for kind, p in told if kind in (OfferWithdrawnFromPartner, OfferExpiredForPartner)}
        return True

    @staticmethod
    def check_concerned(
        event: PartnerEvent, open_before: list[str], open_after: list[str], accepter: str | None, offered: list[str]
    ) -> None:
        partner = event.partner_id
        assert partner in offered, f"{partner} was never offered the referral but was told {event.event_type}"
        if isinstance(event, ReferralOfferedToPartner):
            assert partner in open_after and partner not in open_before
        elif isinstance(event, (OfferWithdrawnFromPartner, OfferExpiredForPartner)):
            assert partner in open_before and partner not in open_after
        else:  # accepted, withdrawn by the enterprise, closed, rated: the partner that accepted
            assert partner == accepter

    @rule(consent=st.booleans())
    def change_consent(self, consent: bool) -> None:
        self.consent = consent

    @rule(which=st.integers(0, 1), partner=st.sampled_from(PARTNERS), round_=st.integers(1, 3))
    def offered(self, which: int, partner: str, round_: int) -> None:
        rid, now = self.rids[which], self.clock.tick()
        self.step(
            rid,
            lambda: self.request.offered(Offer(rid, partner, now, now + WINDOW, round_), self.profile(), MATCHING, now),
        )

    def open_offers(self, which: int) -> list[str]:
        return self.request.referral(self.rids[which]).open_offers

    @precondition(lambda self: self.open_offers(0) or self.open_offers(1))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        which = data.draw(st.sampled_from([i for i in (0, 1) if self.open_offers(i)]), label="referral")
        rid, partner = self.rids[which], data.draw(st.sampled_from(self.open_offers(which)), label="partner")
        actor, now = Actor("partner:" + partner, "a"), self.clock.tick()
        assert self.step(rid, lambda: self.request.accept(rid, partner, self.profile(), actor, now), partner)
        self.consent_at_acceptance[(rid, partner)] = self.consent

    @rule(
        which=st.integers(0, 1),
        partner=st.sampled_from(PARTNERS),
        kind=st.sampled_from(
            ["accept", "decline", "expired", "offer_withdrawn", "start", "complete", "rate", "withdraw", "close"]
        ),
        why=st.sampled_from(list(OfferWithdrawalReason)),
    )
    def anything(self, which: int, partner: str, kind: str, why: OfferWithdrawalReason) -> None:
        """Any command or decision, for any partner: many are refused or superseded, which must change nothing."""
        rid, now = self.rids[which], self.clock.tick()
        request, actor = self.request, Actor("anyone", "x")
        commands: dict[str, Callable[[], object]] = {
            "accept": lambda: request.accept(rid, partner, self.profile(), actor, now),
            "decline": lambda: request.decline(
                rid, partner, Decline(reason=DeclineReason.OTHER, text="no"), actor, now
            ),
            "expired": lambda: request.expired(rid, partner, now - WINDOW, actor, now),
            "offer_withdrawn": lambda: request.offer_withdrawn(rid, partner, why, actor, now),
            "start": lambda: request.start(rid, partner, actor, now),
            "complete": lambda: request.complete(rid, partner, DONE, actor, now),
            "rate": lambda: request.rate(rid, Rating(score=3, comment="fine"), actor, now),
            "withdraw": lambda: request.withdraw(rid, actor, now),
            "close": lambda: request.close(rid, "closed", actor, now),
        }
        answering = partner if kind in ("accept", "decline") else None
        if self.step(rid, commands[kind], answering) and kind == "accept":
            self.consent_at_acceptance[(rid, partner)] = self.consent

    @invariant()
    def the_contact_goes_only_to_the_accepting_partner_with_consent(self) -> None:
        details = CONTACTS
        for envelope in self.request.pending:
            data = envelope.data
            if not isinstance(data, PartnerEvent):
                continue
            shown = text(data)
            leaked = [d for d in details if d in shown]
            if isinstance(data, ReferralAcceptedByPartner):
                consented = self.consent_at_acceptance[(data.referral_id, data.partner_id)]
                assert (data.enterprise.contact is not None) is consented
                assert leaked == (list(details) if consented else [])
            else:
                assert leaked == [], f"{data.event_type} to {data.partner_id} carries {leaked}"
                for fact in identifying(profile(True)):
                    assert fact not in shown, f"{data.event_type} names the enterprise"

    @invariant()
    def one_acceptance_per_referral_at_most(self) -> None:
        for rid in self.rids:
            confirmations = [
                e.data
                for e in self.request.pending
                if isinstance(e.data, ReferralAcceptedByPartner) and e.subject == rid
            ]
            assert len(confirmations) <= 1
            assert [c.partner_id for c in confirmations] == (
                [self.request.referral(rid).partner_id] if self.request.referral(rid).partner_id else []
            )


PartnerMessages.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestPartnerMessages = PartnerMessages.TestCase
