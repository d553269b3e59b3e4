"""Notifications on the real broker and database: signed webhooks that survive a failing receiver and a
restart, secret rotation, e-mail in the recipient's language, and a partner's own topic."""

import email
import email.policy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from goglobal_contract.envelope import from_kafka
from tests import factories
from tests.support import Infra, eventually, free_port
from tests.webhook_receiver import Receiver, running
from tests.world import World, bearer, new_namespace, running_world

FAST_RETRIES = {
    "GOGLOBAL_RETRY_SCHEDULE_S": "[0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1]",
    "GOGLOBAL_DISPATCHER_INTERVAL_S": "0.1",
}


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@dataclass
class Notified:
    """The shared world, and the SMTP sink its notifications service mails to."""

    world: World
    mailbox: Mailbox


@pytest.fixture(scope="module")
async def notified(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Notified]:
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {"notifications": {**FAST_RETRIES, "GOGLOBAL_SMTP_HOST": "127.0.0.1", "GOGLOBAL_SMTP_PORT": str(smtp_port)}}
    try:
        async with running_world(new_namespace(infra), tmp_path_factory.mktemp("notifications"), env) as world:
            yield Notified(world, mailbox)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def world(notified: Notified) -> World:
    return notified.world


async def test_a_receiver_that_fails_then_recovers_gets_every_event_once(world: World) -> None:
    receiver = Receiver(failing=500)
    async with running(receiver):
        await world.add_partner("flaky-hooks", ["legal"], ["AE"], receiver)
        rid = await world.refer("legal", ["AE"])

        async def retried() -> bool:
            return sum(receiver.received.values()) >= 2

        await eventually(retried, "the first retries")
        receiver.failing = None

        async def handled() -> dict[str, Any] | None:
            return next((e for e in receiver.handled.values() if e["subject"] == rid), None)

        event = await eventually(handled, "the offer to be delivered after the receiver recovered")
    assert event["type"] == "hk.goglobal.partner.referral_offered.v1"
    assert event["data"]["need"]["target_markets"] == ["AE"]
    assert "legal_name_en" not in json.dumps(event["data"])  # no identity before acceptance
    offer_id = event["id"]
    assert receiver.received[offer_id] >= 3  # retried at transport level...
    assert list(receiver.handled).count(offer_id) == 1  # ...and handled once by id

    deliveries = (
        await world.http.get("/v1/deliveries", headers=bearer(world.operator), params={"partner_id": "flaky-hooks"})
    ).json()
    webhook = next(d for d in deliveries if d["channel"] == "webhook" and d["event_id"] == offer_id)

    async def settled() -> bool:
        body = (
            await world.http.get(
                "/v1/deliveries",
                headers=bearer(world.operator),
                params={"partner_id": "flaky-hooks", "status": "delivered"},
            )
        ).json()
        return any(d["delivery_id"] == webhook["delivery_id"] for d in body)

    await eventually(settled, "the delivery log to show it delivered")


async def test_rotation_signs_with_both_secrets_during_the_overlap(world: World) -> None:
    receiver = Receiver()
    async with running(receiver):
        key = await world.add_partner("rotating-hooks", ["tax"], ["SG"], receiver)
        old = receiver.secrets[0]
        rotated = (await world.http.post("/v1/partners/me/webhook-secret/rotate", headers=bearer(key))).json()
        assert rotated["secret"] != old and rotated["generation"] == 2
        receiver.secrets[:] = [rotated["secret"]]  # a receiver that already switched to the new secret

        async def notifications_knows_the_rotation() -> bool:
            rid = await world.refer("tax", ["SG"])

            async def delivered() -> dict[str, Any] | None:
                return next((e for e in receiver.handled.values() if e["subject"] == rid), None)

            await eventually(delivered, "a delivery after the rotation")
            return len(receiver.signatures[-1].split()) == 2

        await eventually(notifications_knows_the_rotation, "deliveries signed with both secrets", deadline_s=60)
    assert receiver.rejected == 0


async def test_pending_retries_resume_after_a_restart(world: World) -> None:
    # The retry is asked for 20 s later (the schedule here says 1 s): the kill must find the delivery waiting for
    # its retry, not in the middle of it (a kill mid-attempt leaves it claimed until its 2-minute lease ends).
    receiver = Receiver(failing=503, retry_after_s=20)
    async with running(receiver):
        await world.add_partner("restart-hooks", ["logistics"], ["BR"], receiver)
        rid = await world.refer("logistics", ["BR"])

        async def recorded() -> bool:
            # Killed only once the failed attempt is recorded (it shows as retrying).
            answer = await world.http.get(
                "/v1/deliveries",
                headers=bearer(world.operator),
                params={"partner_id": "restart-hooks", "status": "retrying"},
            )
            return sum(receiver.received.values()) >= 1 and any(d["referral_id"] == rid for d in answer.json())

        await eventually(recorded, "a first failed attempt, recorded")
        world.services["notifications"].kill()
        receiver.failing = None
        await world.replace("notifications")

        async def delivered() -> bool:
            return any(e["subject"] == rid for e in receiver.handled.values())

        await eventually(delivered, "the retried delivery after the restart")


async def test_emails_arrive_in_the_recipients_language(world: World, notified: Notified) -> None:
    await world.add_partner("zh-hant-partner", ["marketing"], ["IT"], languages=["zh-Hant", "en"])
    rid = await world.refer("marketing", ["IT"])

    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""

    async def mail_to(address: str) -> EmailMessage | None:
        return next((m for m in notified.mailbox.messages if m["To"] == address and rid in text(m)), None)

    to_partner = await eventually(lambda: mail_to("desk@zh-hant-partner.example.hk"), "the partner's e-mail")
    assert to_partner["Content-Language"] == "zh-Hant"
    assert to_partner.get_body(preferencelist=("html",)) is not None
    to_enterprise = await eventually(lambda: mail_to("li.wei@brightsolar.example.cn"), "the enterprise's e-mail")
    assert to_enterprise["Content-Language"] == "zh-Hans"
    request_id = rid[:-2] + "00"  # a referral's id is its request's with another last byte

    async def acknowledgement() -> EmailMessage | None:
        to = "li.wei@brightsolar.example.cn"
        return next((m for m in notified.mailbox.messages if m["To"] == to and request_id in m["Subject"]), None)

    received = await eventually(acknowledgement, "the enterprise's acknowledgement of its request")
    assert rid in text(received)  # it lists the need, with its referral


async def test_a_partner_topic_carries_only_that_partners_events(world: World) -> None:
    await world.add_partner("topic-one", ["intellectual_property"], ["GB"])
    await world.add_partner("topic-two", ["accounting"], ["GB"])
    rid_one = await world.refer("intellectual_property", ["GB"])
    rid_two = await world.refer("accounting", ["GB"])
    consumer = AIOKafkaConsumer(
        world.namespace.topic("goglobal.partner.topic-one"),
        bootstrap_servers=world.namespace.infra.kafka,
        auto_offset_reset="earliest",
    )

    async def started() -> bool:
        try:
            await consumer.start()
        except Exception:
            return False
        return True

    await eventually(started, "the partner topic to exist")
    seen: list[str] = []

    async def offered() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            seen.extend(from_kafka(r.key, r.value, list(r.headers)).subject for r in records)
        return rid_one in seen

    try:
        await eventually(offered, "topic-one's offer on its own topic")
    finally:
        await consumer.stop()
    assert rid_two not in seen


async def partner_topic_events(world: World, partner_id: str, referral_id: str, event_type: str) -> dict[str, Any]:
    """The first `event_type` record for `referral_id` on the partner's own topic, as the partner reads it."""
    consumer = AIOKafkaConsumer(
        world.namespace.topic(f"goglobal.partner.{partner_id}"),
        bootstrap_servers=world.namespace.infra.kafka,
        auto_offset_reset="earliest",
    )
    await eventually(lambda: _started(consumer), "the partner topic to exist")
    found: list[dict[str, Any]] = []

    async def arrived() -> dict[str, Any] | None:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                envelope = from_kafka(record.key, record.value, list(record.headers))
                if envelope.subject == referral_id and envelope.type == event_type:
                    found.append(envelope.data.model_dump(mode="json"))
        return found[0] if found else None

    try:
        return await eventually(arrived, f"{event_type} for {referral_id} on {partner_id}'s topic")
    finally:
        await consumer.stop()


async def _started(consumer: AIOKafkaConsumer) -> bool:
    try:
        await consumer.start()
    except Exception:
        return False
    return True


async def webhook_event(receiver: Receiver, referral_id: str, event_type: str) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        return next(
            (e for e in receiver.handled.values() if e["subject"] == referral_id and e["type"] == event_type), None
        )

    return await eventually(arrived, f"{event_type} for {referral_id} at the webhook")


@pytest.mark.parametrize("withdrawn", [True, False], ids=["consent-withdrawn", "consent-kept"])
async def test_consent_at_acceptance_decides_the_contact_on_every_channel(
    world: World, notified: Notified, withdrawn: bool
) -> None:
    """The enterprise consents, a partner gets the offer, the enterprise withdraws its consent (or keeps it), the
    partner accepts: webhook, partner topic, inbox, e-mail and the API all follow the consent at acceptance."""
    partner_id = f"privacy-{'withdrawn' if withdrawn else 'kept'}"
    category = "regulatory_compliance" if withdrawn else "talent_recruitment"
    contact_email = f"{partner_id}@brightsolar.example.cn"
    receiver = Receiver()
    async with running(receiver):
        key = await world.add_partner(partner_id, [category], ["SA"], receiver)
        enterprise = await world.register_enterprise(consent=True, contact_email=contact_email)
        answer = await world.http.post(
            "/v1/service-requests",
            headers=bearer(enterprise.key),
            json={"needs": [{"service_category": category, "target_markets": ["SA"]}]},
        )
        assert answer.status_code == 201, answer.text
        rid = answer.json()["referrals"][0]["id"]
        await webhook_event(receiver, rid, "hk.goglobal.partner.referral_offered.v1")
        if withdrawn:
            changed = await world.http.patch(
                "/v1/enterprises/me",
                headers=bearer(enterprise.key),
                json={"consent": {"share_contact_with_accepted_partners": False}},
            )
            assert changed.status_code == 200, changed.text
        accepted = await world.http.post(f"/v1/referrals/{rid}/accept", headers=bearer(key))
        assert accepted.status_code == 200, accepted.text  # at once: intake recorded the offer before it went out

        hook = await webhook_event(receiver, rid, "hk.goglobal.partner.referral_accepted.v1")
    on_topic = await partner_topic_events(world, partner_id, rid, "hk.goglobal.partner.referral_accepted.v1")
    api = (await world.http.get(f"/v1/referrals/{rid}", headers=bearer(key))).json()
    for channel, shown in (("webhook", hook["data"]), ("partner topic", on_topic), ("API", api)):
        contact = shown["enterprise"]["contact"]
        assert (contact is None) is withdrawn, f"{channel}: contact={contact}"
        assert shown["enterprise"]["legal_name_en"] == enterprise.profile["legal_name_en"], channel

    async def inbox_item() -> dict[str, Any] | None:
        items = (await world.http.get("/v1/inbox", headers=bearer(key))).json()
        return next((i for i in items if i["referral_id"] == rid and i["kind"] == "referral_accepted"), None)

    assert contact_email not in json.dumps(await eventually(inbox_item, "the acceptance in the partner's inbox"))

    def mail_text(message: EmailMessage) -> str:
        return "\n".join(str(part.get_content()) for part in message.walk() if part.get_content_maintype() == "text")

    async def acceptance_mail() -> str | None:
        texts = [mail_text(m) for m in notified.mailbox.messages if m["To"] == f"desk@{partner_id}.example.hk"]
        return next((t for t in texts if rid in t and enterprise.profile["legal_name_en"] in t), None)

    mail = await eventually(acceptance_mail, "the acceptance e-mail to the partner")
    assert (contact_email in mail) is not withdrawn


async def test_an_offer_carries_the_profile_the_api_shows_even_right_after_registration(world: World) -> None:
    """Register and submit at once, many times over: each offer's anonymous profile is the one the API shows the
    same partner (the profile is read from intake, the system of record, when the offer is recorded)."""
    receiver = Receiver()
    provinces, sizes = ["Guangdong", "Zhejiang", "Sichuan", "Hubei"], ["micro", "small", "medium", "large"]
    async with running(receiver):
        key = await world.add_partner("profile-race", ["market_entry"], ["AE"], receiver)
        submitted: dict[str, dict[str, Any]] = {}
        for n in range(8):
            profile = factories.enterprise(seed=1000 + n)
            profile.update(hq_province=provinces[n % 4], size_band=sizes[n // 2 % 4], sector=f"C{20 + n}")
            registered = await world.http.post("/v1/enterprises", json=profile)
            assert registered.status_code == 201, registered.text
            answer = await world.http.post(
                "/v1/service-requests",
                headers=bearer(registered.json()["api_key"]["api_key"]),
                json={"needs": [{"service_category": "market_entry", "target_markets": ["AE"]}]},
            )
            assert answer.status_code == 201, answer.text
            submitted[answer.json()["referrals"][0]["id"]] = profile
        offers = {
            rid: await webhook_event(receiver, rid, "hk.goglobal.partner.referral_offered.v1") for rid in submitted
        }
    for rid, profile in submitted.items():
        shown = (await world.http.get(f"/v1/referrals/{rid}", headers=bearer(key))).json()["enterprise"]
        offered = offers[rid]["data"]["enterprise"]
        for field_name in ("sector", "size_band", "hq_province"):
            assert offered[field_name] == shown[field_name] == profile[field_name], (rid, field_name)
        assert offered["preferred_languages"] == profile["preferred_languages"]
