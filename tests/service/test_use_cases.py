"""Intake's use cases called directly, on the in-memory stores: what each records, what it publishes, and what it
refuses with."""

import asyncio

import pytest

from goglobal_contract.enums import ReferralStatus as S
from goglobal_contract.events import ReferralAccepted, ReferralAssigned, ReferralSubmitted
from goglobal_contract.partner_events import ReferralAcceptedByPartner
from intake.domain.inputs.enterprise import EnterpriseProfile
from intake.domain.inputs.partner import PartnerRecord
from intake.domain.inputs.service_request import Completion, Decline, Need, Rating
from intake.service_layer.errors import Conflict, InvalidInput, NotFound, PartnerNotActive, UnsupportedFormat
from tests import factories
from tests.service.fakes import World
from tests.service.steps import (
    LEGAL,
    OPERATOR,
    enterprises,
    offer,
    partner_principal,
    partners,
    referrals,
    register_enterprise,
    register_partner,
    submissions,
    submit_one,
    unmatched,
)

DONE = Completion.model_validate({"outcome": "engaged", "notes": "Engagement letter signed."})


async def test_a_submission_stores_one_referral_per_need_and_announces_each(world: World) -> None:
    enterprise = await register_enterprise(world)
    needs = [Need.model_validate(LEGAL), Need.model_validate({**LEGAL, "service_category": "tax"})]
    submitted = await submissions(world).submit(enterprise, needs, "req-1")
    assert not submitted.earlier and submitted.request.version == 1
    stored = await world.requests.get(submitted.request.id)
    assert [r.status for r in stored.referrals] == [S.SUBMITTED, S.SUBMITTED]
    announced = world.outbox.of_type(ReferralSubmitted.event_type)
    assert [e.subject for e in announced] == [r.id for r in stored.referrals]


async def test_a_retried_submission_with_its_idempotency_key_returns_the_first(world: World) -> None:
    enterprise = await register_enterprise(world)
    first = await submissions(world).submit(enterprise, [Need.model_validate(LEGAL)], "req-1", "key-1")
    again = await submissions(world).submit(enterprise, [Need.model_validate(LEGAL)], "req-2", "key-1")
    assert again.earlier and again.request.id == first.request.id
    assert len(world.outbox.of_type(ReferralSubmitted.event_type)) == 1


async def test_a_partner_takes_a_referral_from_offer_to_completion_and_the_enterprise_rates_it(world: World) -> None:
    enterprise, partner = await register_enterprise(world), await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    use = referrals(world)
    assert (await use.accept(partner, referral_id, "req-a")).referral.status is S.ACCEPTED
    assert (await use.start(partner, referral_id, "req-s")).referral.status is S.IN_PROGRESS
    assert (await use.complete(partner, referral_id, DONE, "req-c")).referral.status is S.COMPLETED
    rated = await use.rate(enterprise, referral_id, Rating(score=5, comment="Quick and thorough"), "req-r")
    assert rated.referral.rating is not None and rated.referral.rating["score"] == 5
    history = [
        step["cause_id"] for step in (await world.requests.by_referral(referral_id)).referral(referral_id).history
    ]
    assert history[-4:] == ["req-a", "req-s", "req-c", "req-r"]


async def test_a_decline_ends_the_offer_and_a_later_accept_is_a_conflict(world: World) -> None:
    enterprise, partner = await register_enterprise(world), await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    declined = await referrals(world).decline(partner, referral_id, Decline(reason="no_capacity"), "req-d")
    assert declined.referral.status is S.DECLINED
    with pytest.raises(Conflict, match="the offer to gulf-legal is not open"):
        await referrals(world).accept(partner, referral_id, "req-a")


async def test_starting_before_accepting_is_refused_with_the_reason(world: World) -> None:
    enterprise, partner = await register_enterprise(world), await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    with pytest.raises(Conflict, match="offered to you, not accepted"):
        await referrals(world).start(partner, referral_id, "req-s")


async def test_the_enterprise_withdraws_and_an_operator_closes(world: World) -> None:
    enterprise = await register_enterprise(world)
    first, second = await submit_one(world, enterprise), await submit_one(world, enterprise)
    assert (await referrals(world).withdraw(enterprise, first, "req-w")).referral.status is S.WITHDRAWN
    assert (await referrals(world).close(OPERATOR, second, "duplicate", "req-c")).referral.status is S.CLOSED
    with pytest.raises(Conflict):
        await referrals(world).withdraw(enterprise, first, "req-w2")  # withdrawn is final


async def test_who_may_not_see_a_referral_is_told_it_does_not_exist(world: World) -> None:
    enterprise, other = await register_enterprise(world), await register_enterprise(world)
    await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    stranger = partner_principal("harbour-legal")
    use = referrals(world)
    for attempt in (
        use.withdraw(other, referral_id, "req"),
        use.accept(stranger, referral_id, "req"),
        use.read(stranger, referral_id),
    ):
        with pytest.raises(NotFound, match="no referral"):
            await attempt
    missing = referral_id[:-2] + "ff"
    with pytest.raises(NotFound, match="no referral"):
        await referrals(world).read(OPERATOR, missing)


async def test_consent_withdrawn_before_acceptance_keeps_the_contact_from_the_partner(world: World) -> None:
    enterprise, partner = await register_enterprise(world, consent=True), await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    changes = {"consent": {"share_contact_with_accepted_partners": False}}
    await enterprises(world).update(enterprise.subject_id, changes)
    await referrals(world).accept(partner, referral_id, "req-a")
    [told] = world.outbox.of_type(ReferralAcceptedByPartner.event_type)
    assert isinstance(told.data, ReferralAcceptedByPartner)
    assert told.data.enterprise.enterprise_id == enterprise.subject_id and told.data.enterprise.contact is None


async def test_with_consent_the_accepting_partner_is_given_the_contact(world: World) -> None:
    enterprise, partner = await register_enterprise(world, consent=True), await register_partner(world, "gulf-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal")
    await referrals(world).accept(partner, referral_id, "req-a")
    [told] = world.outbox.of_type(ReferralAcceptedByPartner.event_type)
    assert isinstance(told.data, ReferralAcceptedByPartner) and told.data.enterprise.contact is not None


async def test_two_partners_accepting_at_once_one_wins_and_the_other_is_refused(world: World) -> None:
    """The second writer's compare-and-set fails; it reads the accepted referral again and is refused."""
    enterprise = await register_enterprise(world)
    first, second = await register_partner(world, "gulf-legal"), await register_partner(world, "harbour-legal")
    referral_id = await submit_one(world, enterprise)
    await offer(world, referral_id, "gulf-legal", "harbour-legal")
    outcomes = await asyncio.gather(
        referrals(world).accept(first, referral_id, "req-1"),
        referrals(world).accept(second, referral_id, "req-2"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "Seen"]
    assert len(world.outbox.of_type(ReferralAccepted.event_type)) == 1


async def test_an_operator_assigns_an_unmatched_referral_to_an_active_partner_only(world: World) -> None:
    enterprise = await register_enterprise(world)
    await register_partner(world, "gulf-legal")
    await register_partner(world, "sleepy-legal", active=False)
    referral_id = await submit_one(world, enterprise)
    for inactive in ("sleepy-legal", "nobody-legal"):
        with pytest.raises(PartnerNotActive, match=inactive):
            await referrals(world).assign(OPERATOR, referral_id, inactive, "req")
    with pytest.raises(Conflict, match="only an unmatched referral can be assigned"):
        await referrals(world).assign(OPERATOR, referral_id, "gulf-legal", "req")
    await unmatched(world, referral_id)
    await referrals(world).assign(OPERATOR, referral_id, "gulf-legal", "req-assign")
    [assigned] = world.outbox.of_type(ReferralAssigned.event_type)
    assert isinstance(assigned.data, ReferralAssigned) and assigned.data.partner_id == "gulf-legal"


async def test_a_credit_code_registers_once(world: World) -> None:
    profile = EnterpriseProfile.model_validate(factories.enterprise(seed=7))
    await enterprises(world).register(profile)
    with pytest.raises(Conflict) as refused:
        await enterprises(world).register(profile)
    assert refused.value.slug == "already-registered"


async def test_a_change_that_leaves_the_profile_invalid_names_the_field(world: World) -> None:
    enterprise = await register_enterprise(world)
    with pytest.raises(InvalidInput) as refused:
        await enterprises(world).update(enterprise.subject_id, {"contact": {"phone": "12345"}})
    assert [e.field for e in refused.value.errors] == ["contact.phone"]


async def test_a_partner_registers_once_and_never_with_a_private_webhook(world: World) -> None:
    record = PartnerRecord.model_validate(factories.partner("gulf-legal", ["legal"], ["AE"]))
    await partners(world).register(record, OPERATOR.label)
    with pytest.raises(Conflict) as refused:
        await partners(world).register(record, OPERATOR.label)
    assert refused.value.slug == "partner-exists"
    private = factories.partner("hook-legal", ["legal"], ["AE"], delivery={"webhook_url": "https://10.0.0.7/hook"})
    with pytest.raises(InvalidInput) as invalid:
        await partners(world).register(PartnerRecord.model_validate(private), OPERATOR.label)
    assert [e.field for e in invalid.value.errors] == ["delivery.webhook_url"]
    assert await world.partners.get("hook-legal") is None


CSV = (
    "id,name,categories,markets,languages,capacity,contact_name,contact_email,contact_phone,webhook_url\n"
    "gulf-legal,Gulf Legal,legal,AE,en,10,Chan Tai Man,desk@gulf.example.hk,+85221234567,\n"
    "bad-legal,Bad Legal,legal,AE,en,-1,Chan Tai Man,desk@bad.example.hk,+85221234567,\n"
    "hook-legal,Hook Legal,legal,AE,en,10,Chan Tai Man,desk@hook.example.hk,+85221234567,https://127.0.0.1/h\n"
)


async def test_an_import_writes_the_good_rows_and_reports_each_bad_one(world: World) -> None:
    first = await partners(world).import_file(CSV.encode(), "text/csv", None, OPERATOR.label)
    assert (first.created, first.updated, first.failed) == (1, 0, 2)
    assert {(e.line, e.field) for e in first.errors} >= {(3, "capacity"), (4, "webhook_url")}
    again = await partners(world).import_file(CSV.encode(), "text/csv", None, OPERATOR.label)
    assert (again.created, again.updated, again.failed) == (0, 1, 2)
    with pytest.raises(UnsupportedFormat):
        await partners(world).import_file(b"\x00\x01", "application/octet-stream", None, OPERATOR.label)
