"""Notifications' use cases (`notifications.service`) on in-memory fakes, through the consumer's router where an
event starts them: what one partner event or lifecycle event becomes (partner topic, inbox, signed webhook,
e-mails), what a delivery attempt leads to, and when an endpoint is disabled and enabled again."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from goglobal_contract.enums import ServiceCategory
from goglobal_contract.envelope import Envelope, to_structured_json
from goglobal_contract.events import (
    EnterpriseUpserted,
    NeedDetails,
    ReferralOffered,
    ReferralSubmitted,
    SubmittedNeed,
)
from goglobal_contract.notification_events import (
    EndpointDisabled,
    NotificationCreated,
    NotificationDelivered,
    NotificationFailed,
    RecipientType,
    RedeliveryRequested,
)
from goglobal_contract.partner_events import EnterpriseProfileSummary, NeedSummary, ReferralOfferedToPartner
from goglobal_shared.webhook_secrets import partner_secret
from notifications.consumers.lifecycle import ForwardBatch, router
from notifications.email.render import render
from notifications.errors import PartnerNotKnownYet
from notifications.records import DELIVERED, DISABLED, FAILED, LEASE, PENDING
from notifications.service import NotificationService
from tests import factories
from tests.service.clock import START
from tests.service.notifications.conftest import DISABLE_AFTER, World
from tests.support import TEST_WEBHOOK_MASTER_KEY

RID = "0000018f2a0b3c4d5e6f708192a3b4c5"
OTHER_RID = "0000018f2a0b3c4d5e6f708192a3b4c6"
PARTNER = "gulf-legal"
HOOK = "https://hooks.gulf-legal.example/goglobal"
ENTERPRISE = "ent-1"


def offered_to_partner(referral_id: str = RID, partner_id: str = PARTNER) -> Envelope:
    """As intake records it."""
    payload = ReferralOfferedToPartner(
        partner_id=partner_id,
        referral_id=referral_id,
        need=NeedSummary(service_category=ServiceCategory.LEGAL, target_markets=["AE"]),
        enterprise=EnterpriseProfileSummary(sector="C27", size_band="medium"),
        offered_at=START,
        respond_by=START + timedelta(hours=48),
        round=1,
    )
    return Envelope.wrap(payload, source="/goglobal/intake", subject=referral_id)


def enterprise(receive_email: bool) -> EnterpriseUpserted:
    fields = factories.enterprise()
    consent = fields.pop("consent")
    return EnterpriseUpserted(
        **fields,
        enterprise_id=ENTERPRISE,
        share_contact_with_accepted_partners=consent["share_contact_with_accepted_partners"],
        receive_email=receive_email,
        version=1,
        updated_at=START,
    )


def lifecycle(payload: ReferralSubmitted | ReferralOffered) -> Envelope:
    return Envelope.wrap(payload, source="/goglobal/matching", subject=RID)


async def deliver_handed(world: World, service: NotificationService) -> None:
    """What the dispatcher's loop does with the deliveries handed to it."""
    for delivery, partner in world.dispatcher.take():
        await service.deliver(delivery, partner)


async def deliver_due(world: World, service: NotificationService) -> int:
    """What the dispatcher's pass on the clock does."""
    return sum([await service.claim_and_deliver(d) for d in await service.due()])


async def test_an_offer_reaches_the_partner_topic_the_inbox_and_a_signed_webhook(
    world: World, service: NotificationService
) -> None:
    world.clock.now = datetime.now(UTC)  # the receiver checks the signature's timestamp against its own clock
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    event = offered_to_partner()
    await router(service).handle(event)

    assert world.publisher.partner_topics[PARTNER] == [event]
    [item] = world.publisher.published(NotificationCreated)
    assert (item.recipient_type, item.recipient_id, item.kind, item.referral_id) == (
        RecipientType.PARTNER,
        PARTNER,
        "referral_offered",
        RID,
    )
    [delivery] = world.deliveries.of("webhook")
    assert (delivery["status"], delivery["next_attempt_at"]) == (PENDING, world.clock.now + LEASE)  # claimed

    await deliver_handed(world, service)
    [post] = world.webhooks.posts
    assert (post.url, post.body) == (HOOK, to_structured_json(event))
    Webhook(partner_secret(TEST_WEBHOOK_MASTER_KEY, PARTNER, 1)).verify(post.body, dict(post.headers))
    assert post.headers["webhook-id"] == event.id  # the partner dedupes on it
    [outcome] = world.publisher.published(NotificationDelivered)
    assert (outcome.delivery_id, outcome.event_id) == (delivery["_id"], event.id)
    assert world.deliveries.stored[delivery["_id"]]["status"] == DELIVERED


async def test_a_redelivered_partner_event_creates_nothing_twice(world: World, service: NotificationService) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK, contact_email="desk@gulf-legal.example"))
    event = offered_to_partner()
    await router(service).handle(event)
    await deliver_handed(world, service)
    await router(service).handle(event)
    assert len(world.deliveries.stored) == 2  # one webhook, one e-mail
    assert world.dispatcher.handed == []  # attempted already: nothing to hand over again
    # Published again under the same ids: the partner and intake's inbox dedupe them.
    assert {e.id for e in world.publisher.partner_topics[PARTNER]} == {event.id}
    assert len({e.id for e in world.publisher.notifications if e.type == NotificationCreated.event_type}) == 1


async def test_a_poll_of_partner_events_goes_out_at_once_each_partner_in_order(
    world: World, service: NotificationService
) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    await world.partner(factories.partner_upserted(partner_id="no-hooks", name="No Hooks"))
    poll = [offered_to_partner(RID), offered_to_partner(RID, "no-hooks"), offered_to_partner(OTHER_RID)]
    assert await ForwardBatch(service)(poll) == [None, None, None]
    assert world.publisher.partner_topics == {PARTNER: [poll[0], poll[2]], "no-hooks": [poll[1]]}
    assert len(world.publisher.published(NotificationCreated)) == 3
    assert [d["_id"] for d, _ in world.dispatcher.handed] == [f"{poll[0].id}:webhook", f"{poll[2].id}:webhook"]

    # The poll again before any attempt (the forward failed after its write, say): nothing is created twice, and
    # the deliveries are handed over again rather than left to their lease.
    await ForwardBatch(service)(poll)
    assert len(world.deliveries.stored) == 2
    assert [d["_id"] for d, _ in world.dispatcher.handed] == [f"{e.id}:webhook" for e in (poll[0], poll[2])] * 2


async def test_an_event_for_a_partner_not_in_the_directory_yet_is_held_back_not_dropped(
    world: World, service: NotificationService
) -> None:
    """The partner's `upserted` travels on another topic and may come after the offer: the offer waits for it."""
    await world.partner(factories.partner_upserted(partner_id="known", name="Known", webhook_url=HOOK))
    poll = [offered_to_partner(RID), offered_to_partner(OTHER_RID, "known")]
    outcomes = await ForwardBatch(service)(poll)
    assert isinstance(outcomes[0], PartnerNotKnownYet) and outcomes[1] is None
    assert list(world.publisher.partner_topics) == ["known"]  # nothing of the held event went out
    with pytest.raises(PartnerNotKnownYet):  # the consumer's retry, through the ordinary handler
        await router(service).handle(poll[0])

    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    await router(service).handle(poll[0])
    assert world.publisher.partner_topics[PARTNER] == [poll[0]]
    assert f"{poll[0].id}:webhook" in world.deliveries.stored


async def test_a_partner_is_emailed_in_its_language_only_when_email_is_on(world: World) -> None:
    await world.partner(factories.partner_upserted(contact_email="desk@gulf-legal.example", languages=["zh-Hant"]))
    await router(world.service(email=False)).handle(offered_to_partner("without-email"))
    assert world.deliveries.stored == {}

    service = world.service()
    await router(service).handle(offered_to_partner())
    [email] = world.deliveries.of("email")
    assert (email["target"], email["kind"], email["language"]) == (
        "desk@gulf-legal.example",
        "referral_offered",
        "zh-Hant",
    )
    assert email["context"]["partner_name"] == "Gulf Legal"
    assert await deliver_due(world, service) == 1
    [(to, rendered, _)] = world.mailer.sent
    assert to == "desk@gulf-legal.example" and rendered.subject


async def test_the_enterprise_is_emailed_only_with_its_consent(world: World, service: NotificationService) -> None:
    need = NeedDetails(service_category=ServiceCategory.LEGAL, target_markets=["AE"])
    submitted = ReferralSubmitted(
        referral_id=RID,
        request_id="req-1",
        enterprise_id=ENTERPRISE,
        enterprise_name="Acme",
        need=need,
        submitted_at=START,
        request_needs=[SubmittedNeed(referral_id=RID, need=need)],
    )
    offered = ReferralOffered(
        referral_id=RID,
        partner_id=PARTNER,
        partner_name="Gulf Legal",
        offered_at=START,
        respond_by=START + timedelta(hours=48),
        round=1,
    )
    await world.enterprise(enterprise(receive_email=False))
    for payload in (submitted, offered):
        await router(service).handle(lifecycle(payload))
    assert world.deliveries.stored == {}

    world.directory.enterprises.clear()
    await world.enterprise(enterprise(receive_email=True))
    for payload in (submitted, offered):
        await router(service).handle(lifecycle(payload))
    kinds = sorted(d["kind"] for d in world.deliveries.of("email"))
    assert kinds == ["referral_offered_enterprise", "request_received"]
    assert {d["target"] for d in world.deliveries.of("email")} == {"li.wei@brightsolar.example.cn"}


async def test_the_request_is_acknowledged_once_listing_every_need(world: World, service: NotificationService) -> None:
    """The request's first referral carries all its needs: one e-mail, which renders them; the others add none."""
    needs = [
        SubmittedNeed(referral_id=RID, need=NeedDetails(service_category=ServiceCategory.LEGAL, target_markets=["AE"])),
        SubmittedNeed(
            referral_id=OTHER_RID, need=NeedDetails(service_category=ServiceCategory.TAX, target_markets=["SA"])
        ),
    ]
    await world.enterprise(enterprise(receive_email=True))
    for position, told in enumerate(needs):
        submitted = ReferralSubmitted(
            referral_id=told.referral_id,
            request_id="req-2",
            enterprise_id=ENTERPRISE,
            enterprise_name="Acme",
            need=told.need,
            submitted_at=START,
            request_needs=needs if position == 0 else [],
        )
        await router(service).handle(lifecycle(submitted))
    [acknowledgement] = world.deliveries.of("email")
    rendered = render(acknowledgement["kind"], "en", acknowledgement["context"])
    assert "req-2" in rendered.subject and "2 needs" in rendered.subject
    assert RID in rendered.text and OTHER_RID in rendered.text


async def test_what_a_partner_hears_is_what_intake_recorded(world: World, service: NotificationService) -> None:
    """Contact details reach a partner only in the events intake builds once the partner accepted and the
    enterprise consented: notifications adds nothing it knows of the enterprise to what it forwards."""
    await world.enterprise(enterprise(receive_email=True))
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    event = offered_to_partner()
    await router(service).handle(event)
    [delivery] = world.deliveries.of("webhook")
    assert delivery["body"].encode() == to_structured_json(event)
    assert "li.wei@" not in delivery["body"] and "Li Wei" not in delivery["body"]


async def test_an_endpoint_failing_for_too_long_is_disabled_once_and_enabled_by_a_redelivery(
    world: World, service: NotificationService
) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK, contact_email="desk@gulf-legal.example"))
    world.webhooks.answers = [500, 500]
    await router(service).handle(offered_to_partner("first"))
    await deliver_handed(world, service)
    [failed] = world.publisher.published(NotificationFailed)
    assert (failed.final, failed.next_attempt_at) == (False, world.clock.now + timedelta(seconds=60))
    assert world.publisher.published(EndpointDisabled) == []

    world.clock.advance(DISABLE_AFTER)
    await router(service).handle(offered_to_partner("second"))
    await deliver_handed(world, service)
    [disabled] = world.publisher.published(EndpointDisabled)
    assert (disabled.partner_id, disabled.url) == (PARTNER, HOOK)
    assert {d["status"] for d in world.deliveries.of("webhook")} == {DISABLED}  # the pending retry is held
    notices = {(n.recipient_id, n.kind) for n in world.publisher.published(NotificationCreated)}
    assert {(PARTNER, "endpoint_disabled"), ("operators", "endpoint_disabled_operators")} <= notices
    assert "endpoint_disabled" in {d["kind"] for d in world.deliveries.of("email")}

    await router(service).handle(offered_to_partner("third"))
    await deliver_handed(world, service)
    assert len(world.webhooks.posts) == 2  # held, not attempted, while disabled
    assert len(world.publisher.published(EndpointDisabled)) == 1

    asked = RedeliveryRequested(request_id="r-1", partner_id=PARTNER, requested_by="operator", requested_at=START)
    await router(service).handle(Envelope.wrap(asked, source="/goglobal/intake", subject=PARTNER))
    assert world.endpoints.records == {} and world.dispatcher.wakes >= 1
    world.mailer.sent.clear()
    assert await deliver_due(world, service) >= 3
    assert {d["status"] for d in world.deliveries.of("webhook")} == {DELIVERED}


async def test_410_gone_disables_the_endpoint_at_once(world: World, service: NotificationService) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    world.webhooks.answers = [410]
    await router(service).handle(offered_to_partner())
    await deliver_handed(world, service)
    [disabled] = world.publisher.published(EndpointDisabled)
    assert disabled.reason == "the endpoint answered 410 Gone"
    [failed] = world.publisher.published(NotificationFailed)
    assert failed.final


async def test_a_webhook_is_retried_on_the_schedule_then_fails_for_good(
    world: World, service: NotificationService
) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    world.webhooks.answers = [503, 503, 503]
    await router(service).handle(offered_to_partner())
    await deliver_handed(world, service)
    for wait_s in (60, 600):
        world.clock.advance(timedelta(seconds=wait_s - 1))
        assert await deliver_due(world, service) == 0
        world.clock.advance(timedelta(seconds=1))
        assert await deliver_due(world, service) == 1
    finals = [f.final for f in world.publisher.published(NotificationFailed)]
    assert finals == [False, False, True]
    [delivery] = world.deliveries.of("webhook")
    assert (delivery["status"], len(delivery["attempts"])) == (FAILED, 3)
    assert world.publisher.published(EndpointDisabled) == []  # failing for 11 minutes only


async def test_a_refused_target_is_not_tried_again(world: World, service: NotificationService) -> None:
    await world.partner(factories.partner_upserted(webhook_url=HOOK))
    world.webhooks.refused.add(HOOK)
    await router(service).handle(offered_to_partner())
    await deliver_handed(world, service)
    [failed] = world.publisher.published(NotificationFailed)
    assert failed.final and "not a public address" in (failed.attempts[-1].error or "")
