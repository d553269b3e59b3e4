"""Notifications on the real broker and database: signed webhooks that survive a failing receiver and a
restart, secret rotation, e-mail in the recipient's language, and a partner's own topic."""

import email
import email.policy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from goglobal_shared.envelope import from_kafka
from tests import factories
from tests.integration.intake_helpers import (
    bearer,
    module_namespace,
    register_enterprise,
    start_services,
    stop_services,
)
from tests.support import Infra, Namespace, ServiceProcess, discard, eventually, free_port
from tests.webhook_receiver import Receiver, running

pytestmark = pytest.mark.integration
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
class World:
    namespace: Namespace
    services: dict[str, ServiceProcess]
    http: httpx.AsyncClient
    operator: str
    enterprise: str
    mailbox: Mailbox
    log_dir: Path
    env: dict[str, dict[str, str]]

    async def partner(
        self, partner_id: str, category: str, market: str, receiver: Receiver | None, languages: list[str] | None = None
    ) -> str:
        body = factories.partner(partner_id, [category], [market])
        del body["id"]
        if languages:
            body["languages"] = languages
        if receiver is not None:
            body["delivery"] = {"webhook_url": receiver.url}
        assert (await self.http.put(f"/v1/partners/{partner_id}", json=body, headers=bearer(self.operator))).is_success
        key = (
            await self.http.post(
                f"/v1/partners/{partner_id}/api-keys", json={"name": "t"}, headers=bearer(self.operator)
            )
        ).json()["api_key"]
        if receiver is not None:
            secret = await self.http.get("/v1/partners/me/webhook-secret", headers=bearer(key))
            assert secret.status_code == 200, secret.text
            receiver.secrets.append(secret.json()["secret"])
        matching = self.services["matching"].url

        async def known() -> bool:
            return (await self.http.get(f"{matching}/internal/directory/{partner_id}")).status_code == 200

        await eventually(known, f"{partner_id} in matching's directory")
        return str(key)

    async def offer(self, category: str, market: str) -> str:
        answer = await self.http.post(
            "/v1/service-requests",
            headers=bearer(self.enterprise),
            json={"needs": [{"service_category": category, "target_markets": [market]}]},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["referrals"][0]["id"])


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    namespace = module_namespace(infra)
    log_dir = tmp_path_factory.mktemp("notifications")
    env = {"notifications": {**FAST_RETRIES, "GOGLOBAL_SMTP_HOST": "127.0.0.1", "GOGLOBAL_SMTP_PORT": str(smtp_port)}}
    services = await start_services(["intake", "matching", "notifications"], namespace, log_dir, env)
    operator = await factories.operator_key(namespace)
    try:
        async with httpx.AsyncClient(base_url=services["intake"].url, timeout=15) as http:
            enterprise = await register_enterprise(http, consent=True, contact_email="li.wei@brightsolar.example.cn")
            yield World(namespace, services, http, operator, enterprise.key, mailbox, log_dir, env)
    finally:
        stop_services(services)
        await discard(namespace)
        controller.stop()


async def test_a_receiver_that_fails_then_recovers_gets_every_event_once(world: World) -> None:
    receiver = Receiver(failing=500)
    async with running(receiver):
        await world.partner("flaky-hooks", "legal", "AE", receiver)
        rid = await world.offer("legal", "AE")

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
        key = await world.partner("rotating-hooks", "tax", "SG", receiver)
        old = receiver.secrets[0]
        rotated = (await world.http.post("/v1/partners/me/webhook-secret/rotate", headers=bearer(key))).json()
        assert rotated["secret"] != old and rotated["generation"] == 2
        receiver.secrets[:] = [rotated["secret"]]  # a receiver that already switched to the new secret

        async def notifications_knows_the_rotation() -> bool:
            rid = await world.offer("tax", "SG")

            async def delivered() -> dict[str, Any] | None:
                return next((e for e in receiver.handled.values() if e["subject"] == rid), None)

            await eventually(delivered, "a delivery after the rotation")
            return len(receiver.signatures[-1].split()) == 2

        await eventually(notifications_knows_the_rotation, "deliveries signed with both secrets", deadline_s=60)
    assert receiver.rejected == 0


async def test_pending_retries_resume_after_a_restart(world: World) -> None:
    receiver = Receiver(failing=503)
    async with running(receiver):
        await world.partner("restart-hooks", "logistics", "BR", receiver)
        rid = await world.offer("logistics", "BR")

        async def tried() -> bool:
            return sum(receiver.received.values()) >= 1

        await eventually(tried, "a first failed attempt")
        world.services["notifications"].kill()
        receiver.failing = None
        restarted = ServiceProcess("notifications", world.namespace, world.log_dir, world.env["notifications"])
        world.services["notifications"] = restarted.start()
        await restarted.wait_ready()

        async def delivered() -> bool:
            return any(e["subject"] == rid for e in receiver.handled.values())

        await eventually(delivered, "the retried delivery after the restart")


async def test_emails_arrive_in_the_recipients_language(world: World) -> None:
    await world.partner("zh-hant-partner", "marketing", "IT", None, languages=["zh-Hant", "en"])
    rid = await world.offer("marketing", "IT")

    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""

    async def mail_to(address: str) -> EmailMessage | None:
        return next((m for m in world.mailbox.messages if m["To"] == address and rid in text(m)), None)

    to_partner = await eventually(lambda: mail_to("desk@zh-hant-partner.example.hk"), "the partner's e-mail")
    assert to_partner["Content-Language"] == "zh-Hant"
    assert to_partner.get_body(preferencelist=("html",)) is not None
    to_enterprise = await eventually(lambda: mail_to("li.wei@brightsolar.example.cn"), "the enterprise's e-mail")
    assert to_enterprise["Content-Language"] == "zh-Hans"


async def test_a_partner_topic_carries_only_that_partners_events(world: World) -> None:
    await world.partner("topic-one", "intellectual_property", "GB", None)
    await world.partner("topic-two", "accounting", "GB", None)
    rid_one = await world.offer("intellectual_property", "GB")
    rid_two = await world.offer("accounting", "GB")
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
